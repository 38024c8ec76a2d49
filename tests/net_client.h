/*
 * net_client.h - the loopback TCP client pieces shared by the server test
 * (tests/test_server.c), the server benchmark (bench/bench_server.c) and
 * the HTTP fuzz target (tests/fuzz/fuzz_http.c): connect to
 * 127.0.0.1:PORT, send a whole buffer, find a free port, a monotonic clock,
 * decode a chunked response body. A compiled unit of the test support
 * library (the Makefile's TEST_SUPPORT); every call is blocking and
 * thread-safe (no shared state).
 */
#ifndef TESTS_NET_CLIENT_H
#define TESTS_NET_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Seconds on the monotonic clock. */
double net_now(void);

/* A connected socket to 127.0.0.1:port, or -1. recv_timeout_s > 0 bounds
 * every recv (SO_RCVTIMEO) so a silent server fails the caller instead of
 * hanging it; 0 leaves recv blocking (the caller polls). Close-on-exec, so
 * servers the caller starts later do not inherit it. */
int net_connect(int port, int recv_timeout_s);

/* Send all n bytes (no SIGPIPE); 0, or -1 when the peer is gone. */
int net_send_all(int fd, const char *p, size_t n);

/* A loopback port that was free a moment ago (bind to port 0, read the
 * port, close), or -1. Racy by nature; the callers start one server on it
 * at once and retry on a failed start. */
int net_free_port(void);

/* Incremental decoder of an HTTP/1.1 chunked body (RFC 9112 section 7.1):
 * hex size [;extensions] CRLF, data CRLF, ..., a zero size, trailer lines,
 * CRLF. Bytes may arrive split anywhere; net_chunked_feed decodes them in
 * place (the output never runs ahead of the input) and keeps its state
 * between calls. A bare LF is accepted for CRLF. Zero-initialise. */
typedef struct {
    int state;       /* one of the NET_CK_* below */
    int digits;      /* hex digits of the size read so far (bounded) */
    uint64_t left;   /* size being read, then data bytes still to copy */
} net_chunked;

enum { NET_CK_SIZE, NET_CK_EXT, NET_CK_DATA, NET_CK_DATA_END, NET_CK_TRAILER, NET_CK_TRAILER_LINE, NET_CK_DONE };

/* Decode n bytes at p in place; returns the decoded length (data bytes now
 * at p[0..]), or -1 for a malformed stream (a bad size, a size over 2^60,
 * no CRLF after data). Bytes after the end of the body are ignored. */
long net_chunked_feed(net_chunked *c, char *p, size_t n);

/* 1 once the terminating zero-size chunk and its trailer were decoded. */
int net_chunked_done(const net_chunked *c);

#endif
