/* http: the metrics listener (libmicrohttpd, one poll thread, bounded
 * connections) serving metrics.h's exposition on /metrics and its health
 * on /healthz. */
#ifndef WALCOUNT_HTTP_H
#define WALCOUNT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts the HTTP listener on "host:port" (IPv4 address or "localhost",
 * or "[v6]:port"); an empty string starts nothing. A connection idle for
 * idle_timeout_ms (metrics.idle_timeout, rounded up to seconds) is closed. Returns false with err
 * set when the address is malformed or cannot be bound. */
bool http_start(const char *listen, int64_t idle_timeout_ms, char *err, size_t errlen);
void http_stop(void);

#endif
