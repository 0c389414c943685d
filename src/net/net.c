/* SPDX-License-Identifier: MIT */
/*
 * TCP sockets with deadlines. Sockets are non-blocking and every wait is a poll() bounded by
 * the caller's deadline, so a silent or slow peer costs a timeout, never a stuck thread.
 * Writes use MSG_NOSIGNAL: a peer that resets the connection gives EPIPE, not a SIGPIPE that
 * would kill the server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

int64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t net_deadline(int64_t ms_from_now)
{
    return ms_from_now <= 0 ? NET_NO_DEADLINE : net_now_ms() + ms_from_now;
}

/* Milliseconds poll() may wait before deadline (-1 = forever), 0 once it has passed. */
static int wait_ms(int64_t deadline)
{
    if (deadline == NET_NO_DEADLINE)
        return -1;
    int64_t left = deadline - net_now_ms();
    if (left <= 0)
        return 0;
    return left > 60000 ? 60000 : (int)left; /* re-check at least every minute */
}

/* Waits until fd is ready for events or deadline passes. */
static vp_status wait_fd(int fd, short events, int64_t deadline, vp_error *err)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = wait_ms(deadline);
        int rc = poll(&p, 1, ms);
        if (rc > 0)
            return VP_OK; /* ready, or an error/hang-up the following call will report */
        if (rc < 0 && errno != EINTR)
            return vp_error_set(err, VP_EIO, "poll: %s", strerror(errno));
        if (rc == 0 && ms >= 0 && net_now_ms() >= deadline)
            return vp_error_set(err, VP_ETIMEOUT, "timed out");
    }
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(buf, size, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        /* IPv4 clients of a dual-stack listener appear as ::ffff:a.b.c.d; show a.b.c.d. */
        const char *h = strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.') ? host + 7 : host;
        snprintf(buf, size, h == host ? "[%s]:%u" : "%s:%u", h, port);
    } else {
        snprintf(buf, size, "?");
    }
}

void net_peer_name(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(buf, size, "?");
        return;
    }
    format_addr((struct sockaddr *)&ss, buf, size);
}

/* Connected-socket options: non-blocking (every wait is a bounded poll) and TCP_NODELAY. */
static int prepare(int fd)
{
    int one = 1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A listening socket for ai, or -1 with *e set. dual: IPv6 wildcard also taking IPv4. */
static int try_listen(const struct addrinfo *ai, bool dual, int backlog, int *e)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
        *e = errno;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual)
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    int fl = fcntl(s, F_GETFL);
    if (fl >= 0 && fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0 &&
        bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, backlog > 0 ? backlog : 128) == 0)
        return s;
    *e = errno;
    close(s);
    return -1;
}

vp_status net_listen(const char *host, uint16_t port, int backlog, int *fd, uint16_t *bound_port,
                     vp_error *err)
{
    *fd = -1;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *h = host && *host ? host : NULL;
    int rc = getaddrinfo(h, service, &hints, &res);
    if (rc != 0)
        return vp_error_set(err, VP_EINVAL, "cannot resolve %s: %s", h ? h : "*", gai_strerror(rc));
    /* With no host, prefer the IPv6 wildcard with V6ONLY off: one socket for both families.
     * Without IPv6 that fails and the whole list is tried. */
    int e = 0;
    for (struct addrinfo *ai = res; ai && !h && *fd < 0; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            *fd = try_listen(ai, true, backlog, &e);
    for (struct addrinfo *ai = res; ai && *fd < 0; ai = ai->ai_next)
        *fd = try_listen(ai, false, backlog, &e);
    freeaddrinfo(res);
    if (*fd < 0)
        return vp_error_set(err, VP_EIO, "cannot listen on %s:%u: %s", h ? h : "*", port,
                            strerror(e));
    if (bound_port) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        *bound_port = port;
        if (getsockname(*fd, (struct sockaddr *)&ss, &len) == 0)
            *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                         : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return VP_OK;
}

vp_status net_accept(int lfd, int64_t deadline, int *fd, char *peer, size_t peer_size,
                     vp_error *err)
{
    *fd = -1;
    vp_status st = wait_fd(lfd, POLLIN, deadline, err);
    if (st)
        return st;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int s = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (s < 0) {
        switch (errno) {
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: return vp_error_set(err, VP_EAGAIN, "accept: %s", strerror(errno));
        default: return vp_error_set(err, VP_EIO, "accept: %s", strerror(errno));
        }
    }
    if (prepare(s) != 0) {
        int e = errno;
        close(s);
        return vp_error_set(err, VP_EAGAIN, "socket options: %s", strerror(e));
    }
    if (peer)
        format_addr((struct sockaddr *)&ss, peer, peer_size);
    *fd = s;
    return VP_OK;
}

vp_status net_connect(const char *host, uint16_t port, int64_t deadline, int *fd, vp_error *err)
{
    *fd = -1;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return vp_error_set(err, VP_EINVAL, "cannot resolve %s: %s", host, gai_strerror(rc));
    vp_status st = VP_EIO;
    int e = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (s < 0) {
            e = errno;
            continue;
        }
        if (prepare(s) != 0) {
            e = errno;
            close(s);
            continue;
        }
        if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            e = errno;
            close(s);
            continue;
        }
        vp_error werr = {0};
        if (wait_fd(s, POLLOUT, deadline, &werr) != VP_OK) {
            close(s);
            freeaddrinfo(res);
            return vp_error_set(err, werr.status, "connect to %s:%u: %s", host, port, werr.msg);
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        if (soerr != 0) {
            e = soerr;
            close(s);
            continue;
        }
        *fd = s;
        st = VP_OK;
        break;
    }
    freeaddrinfo(res);
    if (st)
        return vp_error_set(err, VP_EIO, "connect to %s:%u: %s", host, port,
                            strerror(e ? e : ECONNREFUSED));
    return VP_OK;
}

vp_status net_read(int fd, void *buf, size_t cap, int64_t deadline, size_t *got, vp_error *err)
{
    *got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf, cap, 0);
        if (k > 0) {
            *got = (size_t)k;
            /* Acknowledge at once rather than after the delayed-ACK timer (40 ms on Linux):
             * a peer with Nagle's algorithm on (dcmtk's tools by default) holds the second
             * small write of a response until the first is acknowledged, and a request/
             * response protocol then waits 40 ms per message. Linux clears the flag as it
             * goes, so it is set again after each read. */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            return VP_OK;
        }
        if (k == 0)
            return vp_error_set(err, VP_ECLOSED, "connection closed by peer");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return vp_error_set(err, errno == ECONNRESET ? VP_ECLOSED : VP_EIO, "recv: %s",
                                strerror(errno));
        vp_status st = wait_fd(fd, POLLIN, deadline, err);
        if (st)
            return st;
    }
}

vp_status net_write_all(int fd, const void *p, size_t n, int64_t deadline, vp_error *err)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return vp_error_set(err, errno == EPIPE || errno == ECONNRESET ? VP_ECLOSED : VP_EIO,
                                "send: %s", strerror(errno));
        vp_status st = wait_fd(fd, POLLOUT, deadline, err);
        if (st)
            return st;
    }
    return VP_OK;
}
