/* net_client.c - the loopback TCP client of the tests, the server benchmark
 * and the HTTP fuzz target (net_client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "net_client.h"

double net_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* connect() failed: 1 when only a signal interrupted it and the connection
 * then completed. A signal (libFuzzer's -timeout alarm, SIGALRM every
 * timeout/2 s) can land while connect waits - on loopback, when the
 * server's accept queue is full, for a SYN retransmit of 1 s - and connect
 * does not restart: the handshake goes on in the kernel, so wait for it
 * (poll for writable) and take its result from SO_ERROR. */
static int net_connect_resume(int fd)
{
    if (errno != EINTR) return 0;
    struct pollfd pf = {fd, POLLOUT, 0};
    int pr;
    do
        pr = poll(&pf, 1, 30000);
    while (pr < 0 && errno == EINTR);
    int err = 0;
    socklen_t el = sizeof err;
    return pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
}

int net_connect(int port, int recv_timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (recv_timeout_s > 0) {
        struct timeval tv = {recv_timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && !net_connect_resume(fd)) {
        close(fd);
        return -1;
    }
    return fd;
}

int net_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int net_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &al) == 0;
    close(fd);
    return ok ? ntohs(a.sin_port) : -1;
}

long net_chunked_feed(net_chunked *c, char *p, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n && c->state != NET_CK_DONE) {
        char ch = p[in];
        switch (c->state) {
        case NET_CK_SIZE: {
            int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            in++;
            if (v >= 0) {
                if (++c->digits > 15) return -1;
                c->left = c->left * 16 + (uint64_t)v;
            } else if (c->digits && (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r')) {
                c->state = NET_CK_EXT;
            } else if (c->digits && ch == '\n') {
                c->state = c->left ? NET_CK_DATA : NET_CK_TRAILER;
            } else {
                return -1;
            }
            break;
        }
        case NET_CK_EXT:   /* extensions ignored up to the LF */
            in++;
            if (ch == '\n') c->state = c->left ? NET_CK_DATA : NET_CK_TRAILER;
            break;
        case NET_CK_DATA: {
            size_t k = n - in < c->left ? n - in : (size_t)c->left;
            memmove(p + out, p + in, k);
            out += k;
            in += k;
            c->left -= k;
            if (!c->left) c->state = NET_CK_DATA_END;
            break;
        }
        case NET_CK_DATA_END:   /* CR LF after the data */
            in++;
            if (ch == '\n') {
                c->state = NET_CK_SIZE;
                c->digits = 0;
            } else if (ch != '\r') {
                return -1;
            }
            break;
        case NET_CK_TRAILER:    /* at the start of a trailer line: an empty one ends the body */
            in++;
            if (ch == '\n') c->state = NET_CK_DONE;
            else if (ch != '\r') c->state = NET_CK_TRAILER_LINE;
            break;
        case NET_CK_TRAILER_LINE:
            in++;
            if (ch == '\n') c->state = NET_CK_TRAILER;
            break;
        }
    }
    return (long)out;
}

int net_chunked_done(const net_chunked *c)
{
    return c->state == NET_CK_DONE;
}
