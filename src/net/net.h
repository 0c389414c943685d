/* SPDX-License-Identifier: MIT */
/*
 * Sockets for the DICOM upper layer (PS3.8 9.1.1: TCP transport). Every connected socket gets
 * TCP_NODELAY: DICOM is request/response, and Nagle's algorithm holds a small response back
 * until the peer's delayed ACK (40 ms on Linux), which caps a C-STORE stream at a few dozen
 * objects per second. Socket buffer sizes are left to the kernel: pinning SO_RCVBUF/SO_SNDBUF
 * turns receive-window autotuning off. Every blocking call takes a deadline so that no peer,
 * slow or silent, can hold a thread forever.
 */
#ifndef VP_NET_H
#define VP_NET_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Monotonic clock in milliseconds, for deadlines. */
int64_t net_now_ms(void);

/* Deadline ms_from_now milliseconds ahead; NET_NO_DEADLINE when ms_from_now <= 0. */
#define NET_NO_DEADLINE INT64_MAX
int64_t net_deadline(int64_t ms_from_now);

/*
 * Opens a listening TCP socket on host:port (host NULL or "" = every address, IPv6 and IPv4
 * when the system has IPv6; port 0 = a free port). SO_REUSEADDR is set so a restarted server
 * binds at once. The bound port goes to *bound_port (may be NULL).
 */
vp_status net_listen(const char *host, uint16_t port, int backlog, int *fd, uint16_t *bound_port,
                     vp_error *err);

/*
 * Accepts one connection on listening socket lfd, waiting at most until deadline. The new
 * socket is close-on-exec with TCP_NODELAY; "address:port" of the peer goes to peer.
 * VP_ETIMEOUT when the deadline passed, VP_EAGAIN on a transient failure (interrupted, the
 * peer reset before accept, out of descriptors for a moment): call again.
 */
vp_status net_accept(int lfd, int64_t deadline, int *fd, char *peer, size_t peer_size,
                     vp_error *err);

/* Connects to host:port (names resolved, every address tried in turn), giving up at
 * deadline. The socket is close-on-exec with TCP_NODELAY. */
vp_status net_connect(const char *host, uint16_t port, int64_t deadline, int *fd, vp_error *err);

/*
 * Reads what is available, at most cap bytes, waiting until deadline for at least one.
 * *got > 0 on VP_OK. VP_ECLOSED when the peer closed its side, VP_ETIMEOUT, VP_EIO.
 */
vp_status net_read(int fd, void *buf, size_t cap, int64_t deadline, size_t *got, vp_error *err);

/* Writes all n bytes, waiting until deadline when the peer does not read. */
vp_status net_write_all(int fd, const void *p, size_t n, int64_t deadline, vp_error *err);

/* "address:port" of the socket's peer (or "?" when unknown). */
void net_peer_name(int fd, char *buf, size_t size);

#endif /* VP_NET_H */
