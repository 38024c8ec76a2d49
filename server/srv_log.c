/* srv_log.c - the server's clock and its log lines (see srv_log.h). */
#include "srv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "srv_core.h"
#include "srv_json.h"

uint64_t srv_now_ns(void)
{
    return uv_hrtime();
}

void srv_log_time(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void srv_log_write(json_t *j)
{
    char *line = json_dumps(j, SRV_JSON_FLAGS);
    json_decref(j);
    if (!line) return;
    size_t n = strlen(line);
    char *l2 = realloc(line, n + 2);
    if (l2) {
        l2[n] = '\n';
        l2[n + 1] = 0;
        fputs(l2, stderr);
        line = l2;
    }
    free(line);
}

/* One JSON line per message on stderr (srv_log_write). */
void srv_log(srv_server *s, int level, const char *fmt, ...)
{
    if (s && level > s->cfg.log_level) return;
    char msg[1024], t[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_log_time(t, sizeof t);
    json_t *j = json_pack("{s:s,s:s,s:o}", "time", t, "level", level_names[level], "msg",
                          srv_json_bytes(msg, strlen(msg)));
    if (j) srv_log_write(j);
}

