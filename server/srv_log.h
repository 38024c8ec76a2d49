/*
 * srv_log.h - the server's clock and log lines, used by every server
 * thread (the loop, the pool stage and the worker), so no module calls back
 * into the loop for them.
 *
 * Each line is one JSON object on stderr written with a single fputs, so
 * lines of different threads never interleave.
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct srv_server srv_server;

/* Monotonic nanoseconds (libuv's high-resolution clock). */
uint64_t srv_now_ns(void);
/* "2026-12-04T01:02:03.456Z" (UTC, milliseconds) into buf. */
void srv_log_time(char *buf, size_t n);
/* Write j (consumed) as one line on stderr. */
void srv_log_write(json_t *j);
/* {"time", "level", "msg"} when level is within the server's --log-level
 * (s NULL: always). */
void srv_log(srv_server *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
