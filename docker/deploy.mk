# docker/deploy.mk - container deployment targets, included by the top
# Makefile (`-include docker/deploy.mk`).
#   make test-deploy   build the image with podman, run the compose stack
#                      (3 replicas + nginx) and test spread, SIGKILL failover
#                      and SIGTERM drain through nginx (docker/test-deploy.sh;
#                      needs root; installs podman & co. with apt-get if missing)
.PHONY: test-deploy
test-deploy: $(SYNTH)
	SYNTH=$(abspath $(SYNTH)) docker/test-deploy.sh

# make test-fresh    the README's two commands in a pristine Debian 12
#                    container (debootstrap minbase) from a fresh clone of
#                    HEAD: the server comes up and answers, `make check`
#                    passes (docker/test-fresh.sh; needs root and podman)
.PHONY: test-fresh
test-fresh:
	docker/test-fresh.sh
