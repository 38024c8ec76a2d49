# docker/deploy.mk - container deployment targets, included by the top
# Makefile (`-include docker/deploy.mk`).
#   make test-deploy   build the image with podman, run the compose stack
#                      (3 replicas + nginx) and test spread, SIGKILL failover
#                      and SIGTERM drain through nginx (docker/test-deploy.sh;
#                      needs root; installs podman & co. with apt-get if missing)
.PHONY: test-deploy
test-deploy: $(SYNTH)
	SYNTH=$(abspath $(SYNTH)) docker/test-deploy.sh
