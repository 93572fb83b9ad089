/* oload: HTTP/1.1 POST latency generator for the mcpgate benchmark suite.
 *
 * Open loop (-r RATE): each connection sends on a fixed schedule; latency is measured from the
 * *intended* send time, so a stall delays every later request's clock too (coordinated-omission
 * correction, as wrk2 does). Closed loop (no -r): send, wait for the whole response, send again;
 * latency from the actual send time. Prints one JSON object on stdout.
 *
 * `oload -S` only spins: run it under SCHED_IDLE (chrt -i 0) on a core to keep that vCPU from
 * halting between requests; any runnable task preempts it at once.
 *
 * Build: gcc -O2 -o oload oload.c   (Linux only: epoll_pwait2 for sub-millisecond timers)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { S_CLOSED, S_CONNECTING, S_IDLE, S_SENDING, S_WAITING };
enum { P_HDR, P_CL, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER, P_EOF };

typedef struct {
    int fd, state, pstate, status, want_close;
    size_t woff;
    int64_t intended, sent_at, next_due;
    char hdr[16384];
    size_t hlen;
    char line[256];
    size_t llen;
    int64_t remaining;
} conn_t;

static struct sockaddr_in addr;
static char *req;
static size_t req_len;
static int epfd;
static int64_t *lat;
static size_t nlat, caplat;
static long long sent, completed, errors, non2xx, reconnects;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *m) { perror(m); exit(2); }

static void record(int64_t v) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof(int64_t));
        if (!lat) die("realloc");
    }
    lat[nlat++] = v;
}

static void conn_open(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    if (r < 0 && errno != EINPROGRESS) die("connect");
    c->state = S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void conn_reset(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    reconnects++;
    conn_open(c);
}

static void set_events(conn_t *c, uint32_t evs) {
    struct epoll_event ev = {.events = evs, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void try_send(conn_t *c) {
    while (c->woff < req_len) {
        ssize_t n = write(c->fd, req + c->woff, req_len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN) { set_events(c, EPOLLIN | EPOLLOUT); c->state = S_SENDING; return; }
            errors++; conn_reset(c); return;
        }
        c->woff += (size_t)n;
    }
    c->state = S_WAITING;
    c->pstate = P_HDR; c->hlen = 0; c->llen = 0; c->want_close = 0;
    set_events(c, EPOLLIN);
}

static void start_request(conn_t *c, int64_t intended) {
    c->intended = intended;
    c->sent_at = now_ns();
    c->woff = 0;
    sent++;
    try_send(c);
}

static int parse_headers(conn_t *c) {
    /* status line */
    if (c->hlen < 12 || strncmp(c->hdr, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->hdr + 9);
    int64_t clen = -1; int chunked = 0;
    char *p = strstr(c->hdr, "\r\n");
    while (p && p[2] != '\r') {
        char *l = p + 2;
        char *e = strstr(l, "\r\n");
        if (!e) break;
        if (strncasecmp(l, "content-length:", 15) == 0) clen = atoll(l + 15);
        else if (strncasecmp(l, "transfer-encoding:", 18) == 0 && strcasestr(l, "chunked") && strcasestr(l, "chunked") < e) chunked = 1;
        else if (strncasecmp(l, "connection:", 11) == 0 && strcasestr(l, "close") && strcasestr(l, "close") < e) c->want_close = 1;
        p = e;
    }
    if (chunked) { c->pstate = P_CHUNK_SIZE; c->llen = 0; }
    else if (clen >= 0) { c->pstate = P_CL; c->remaining = clen; }
    else { c->pstate = P_EOF; c->want_close = 1; }
    return 0;
}

/* returns 1 when the response is complete, 0 if more is needed, -1 on a framing error */
static int feed(conn_t *c, const char *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        switch (c->pstate) {
        case P_HDR: {
            while (i < n && c->hlen < sizeof c->hdr - 1) {
                c->hdr[c->hlen++] = b[i++];
                if (c->hlen >= 4 && memcmp(c->hdr + c->hlen - 4, "\r\n\r\n", 4) == 0) {
                    c->hdr[c->hlen] = 0;
                    if (parse_headers(c) < 0) return -1;
                    if (c->pstate == P_CL && c->remaining == 0) return i == n ? 1 : -1;
                    break;
                }
            }
            if (c->hlen >= sizeof c->hdr - 1) return -1;
            break;
        }
        case P_CL: {
            size_t take = n - i;
            if ((int64_t)take > c->remaining) return -1; /* no pipelining: extra bytes are an error */
            c->remaining -= (int64_t)take; i += take;
            if (c->remaining == 0) return i == n ? 1 : -1;
            break;
        }
        case P_CHUNK_SIZE:
        case P_TRAILER: {
            char ch = b[i++];
            if (c->llen < sizeof c->line - 1) c->line[c->llen++] = ch;
            if (ch == '\n') {
                c->line[c->llen] = 0;
                if (c->pstate == P_TRAILER) {
                    int empty = c->llen <= 2;
                    c->llen = 0;
                    if (empty) return i == n ? 1 : -1;
                } else {
                    c->remaining = strtoll(c->line, NULL, 16);
                    c->llen = 0;
                    c->pstate = c->remaining == 0 ? P_TRAILER : P_CHUNK_DATA;
                }
            }
            break;
        }
        case P_CHUNK_DATA: {
            size_t take = n - i;
            if ((int64_t)take > c->remaining) take = (size_t)c->remaining;
            c->remaining -= (int64_t)take; i += take;
            if (c->remaining == 0) { c->pstate = P_CHUNK_CRLF; c->remaining = 2; }
            break;
        }
        case P_CHUNK_CRLF: {
            i++;
            if (--c->remaining == 0) { c->pstate = P_CHUNK_SIZE; c->llen = 0; }
            break;
        }
        case P_EOF:
            i = n;
            break;
        }
    }
    return 0;
}

static void finish(conn_t *c, int64_t t, int64_t record_from, int open_loop) {
    completed++;
    if (c->status < 200 || c->status > 299) non2xx++;
    if (c->sent_at >= record_from) record(t - (open_loop ? c->intended : c->sent_at));
    c->state = S_IDLE;
    if (c->want_close) conn_reset(c);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    if (!nlat) return 0;
    size_t k = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
    return (double)lat[k] / 1000.0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = "/mcp", *bodyfile = NULL;
    int port = 0, nconn = 1, opt;
    double rate = 0, duration = 3, warmup = 0;
    char extra[4096] = "";
    while ((opt = getopt(argc, argv, "h:p:u:b:c:r:d:w:H:S")) != -1) {
        switch (opt) {
        case 'S':
            for (;;) __asm__ volatile("pause");
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'b': bodyfile = optarg; break;
        case 'c': nconn = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'H':
            if (strlen(extra) + strlen(optarg) + 3 < sizeof extra) { strcat(extra, optarg); strcat(extra, "\r\n"); }
            break;
        default:
            fprintf(stderr, "usage: oload -p PORT -b BODY [-h HOST] [-u PATH] [-c CONNS] [-r RATE] [-d SECS] [-w WARMUP] [-H 'k: v']\n");
            return 2;
        }
    }
    if (!port || !bodyfile || nconn < 1) { fprintf(stderr, "oload: -p and -b are required\n"); return 2; }
    FILE *f = fopen(bodyfile, "rb");
    if (!f) die("body");
    static char body[1 << 20];
    size_t blen = fread(body, 1, sizeof body, f);
    fclose(f);
    req = malloc(blen + 8192);
    req_len = (size_t)snprintf(req, 8192,
        "POST %s HTTP/1.1\r\nHost: %s:%d\r\ncontent-type: application/json\r\n"
        "accept: application/json, text/event-stream\r\n%scontent-length: %zu\r\n\r\n",
        path, host, port, extra, blen);
    memcpy(req + req_len, body, blen);
    req_len += blen;

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "oload: bad host\n"); return 2; }
    epfd = epoll_create1(0);
    conn_t *cs = calloc((size_t)nconn, sizeof(conn_t));
    int open_loop = rate > 0;
    int64_t interval = open_loop ? (int64_t)(1e9 * nconn / rate) : 0;
    for (int i = 0; i < nconn; i++) conn_open(&cs[i]);

    int64_t t0 = now_ns() + 20000000LL; /* 20 ms to finish connecting */
    int64_t record_from = t0 + (int64_t)(warmup * 1e9);
    int64_t t_end = record_from + (int64_t)(duration * 1e9);
    int64_t drain_end = t_end + 2000000000LL;
    for (int i = 0; i < nconn; i++) cs[i].next_due = t0 + (open_loop ? (int64_t)(1e9 * i / rate) : 0);
    long long missed = 0;
    struct epoll_event evs[256];
    for (;;) {
        int64_t t = now_ns();
        int sending = t < t_end, busy = 0;
        int64_t soonest = t + 10000000LL;
        for (int i = 0; i < nconn; i++) {
            conn_t *c = &cs[i];
            if (c->state == S_IDLE && sending && t >= c->next_due) {
                int64_t intended = c->next_due;
                c->next_due = open_loop ? c->next_due + interval : t;
                start_request(c, intended);
            }
            if (c->state == S_SENDING || c->state == S_WAITING || c->state == S_CONNECTING) busy = 1;
            if (c->state == S_IDLE && sending && c->next_due < soonest) soonest = c->next_due;
        }
        if (!sending && !busy) break;
        if (t >= drain_end) break;
        int64_t wait = soonest - now_ns();
        if (wait < 0) wait = 0;
        struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
        int n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll");
        int64_t tr = now_ns();
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->state == S_CONNECTING) {
                int err = 0; socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { errors++; close(c->fd); epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL); usleep(1000); conn_open(c); continue; }
                c->state = S_IDLE;
                set_events(c, EPOLLIN);
                continue;
            }
            if (c->state == S_SENDING && (evs[k].events & EPOLLOUT)) { try_send(c); continue; }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[65536];
                for (;;) {
                    ssize_t r = read(c->fd, buf, sizeof buf);
                    if (r > 0) {
                        if (c->state != S_WAITING) { errors++; conn_reset(c); break; }
                        int done = feed(c, buf, (size_t)r);
                        if (done < 0) { errors++; conn_reset(c); break; }
                        if (done == 1) { finish(c, tr, record_from, open_loop); break; }
                        continue;
                    }
                    if (r == 0) {
                        if (c->state == S_WAITING && c->pstate == P_EOF) finish(c, tr, record_from, open_loop);
                        else if (c->state == S_WAITING || c->state == S_SENDING) errors++;
                        if (c->state != S_CONNECTING) conn_reset(c);
                        break;
                    }
                    if (errno != EAGAIN) { errors++; conn_reset(c); }
                    break;
                }
            }
        }
    }
    long long incomplete = 0;
    for (int i = 0; i < nconn; i++) {
        if (cs[i].state == S_WAITING || cs[i].state == S_SENDING) incomplete++;
        if (open_loop && cs[i].next_due < t_end) missed += (t_end - cs[i].next_due) / interval + 1;
    }
    qsort(lat, nlat, sizeof(int64_t), cmp64);
    double mean = 0;
    for (size_t i = 0; i < nlat; i++) mean += (double)lat[i];
    mean = nlat ? mean / (double)nlat / 1000.0 : 0;
    double secs = (double)(t_end - record_from) / 1e9;
    printf("{\"mode\":\"%s\",\"rate\":%.1f,\"connections\":%d,\"duration_s\":%.3f,\"sent\":%lld,"
           "\"completed\":%lld,\"recorded\":%zu,\"errors\":%lld,\"non2xx\":%lld,\"incomplete\":%lld,"
           "\"missed\":%lld,\"reconnects\":%lld,\"achieved_rps\":%.1f,"
           "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}}\n",
           open_loop ? "open" : "closed", rate, nconn, secs, sent, completed, nlat, errors, non2xx,
           incomplete, missed, reconnects - 0, secs > 0 ? (double)nlat / secs : 0,
           pct(50), pct(90), pct(99), pct(99.9), nlat ? (double)lat[nlat - 1] / 1000.0 : 0, mean);
    return 0;
}
