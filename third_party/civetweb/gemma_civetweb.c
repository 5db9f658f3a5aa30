/* gemma_civetweb.c - builds the vendored civetweb.c (unmodified) and adds the
 * one thing gemma serve needs that its API lacks: whether the client of a
 * connection has gone away while the handler is still computing a
 * non-streamed reply (a stream finds out on its next write).  Being in the
 * same translation unit, it can look at the connection's socket. */
#include "civetweb.c"

#include "gemma_civetweb.h"

int mg_gemma_client_gone(const struct mg_connection *conn) {
    if (!conn || conn->client.sock == INVALID_SOCKET) return 1;
    struct pollfd p = {.fd = conn->client.sock, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return 0;   /* nothing to read: still there */
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    char b;
    ssize_t n = recv(conn->client.sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    /* 0: orderly close; > 0: the client already sent more (a pipelined request): still there */
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}
