/* Start-up order (issue 12 item 11): what can fail locally fails first. A
 * metrics port already in use ends `run` with one line naming the address,
 * before the schema, the slot or the initial load exist. The listener is
 * up before the first connection, and /healthz says so until streaming. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

/* A listening socket on 127.0.0.1 with a port the kernel picks; its port
 * into *port. -1 on failure. */
static int occupy_port(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Neither the slot nor the walcount schema exists. */
static bool nothing_created(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], slot[8], schema[8];

	if (!it_value(t->conn, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", 1, params, slot,
		      sizeof slot, err, sizeof err) ||
	    !it_value(t->conn, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'walcount')", 0, NULL, schema,
		      sizeof schema, err, sizeof err))
		return fail_err(t, "checking what run created", err);
	if (strcmp(slot, "f") != 0 || strcmp(schema, "f") != 0)
		return fail(t, "run with its metrics port in use left behind:%s%s", strcmp(slot, "f") ? " the slot" : "",
			    strcmp(schema, "f") ? " the walcount schema" : "");
	return true;
}

/* run against a server that does not answer, retrying: the listener is
 * up, and /healthz answers 503 "not streaming". */
static bool health_before_streaming(struct ctx *t)
{
	char *body = NULL, err[IT_ERRLEN];
	int port = free_port(t), closed, code = -1;
	int fd = occupy_port(&closed);
	FILE *f = fopen(t->wc.config, "w");

	if (fd >= 0)
		close(fd);
	if (f == NULL || fd < 0 || port == 0) {
		if (f != NULL)
			fclose(f);
		return fail(t, "cannot write %s or find a closed and a free port", t->wc.config);
	}
	fprintf(f,
		"database:\n  dsn: \"host=127.0.0.1 port=%d dbname=%s user=postgres\"\nslot:\n  name: %s\n"
		"metrics:\n  listen: \"127.0.0.1:%d\"\nstream:\n  connect_attempts: 1000\n  reconnect_min: 100ms\n"
		"  reconnect_max: 200ms\n",
		closed, t->db, t->db, port);
	if (fclose(f) != 0 || !start(t))
		return fail(t, "cannot write %s or start walcount", t->wc.config);
	for (double end = it_now() + 10; code < 0 && it_now() < end && wc_alive(&t->wc); it_sleep_ms(50)) {
		free(body);
		body = NULL;
		code = http_get(port, "/healthz", &body);
	}
	bool ok = code == 503 && body != NULL && strstr(body, "not streaming") != NULL;
	if (!ok)
		fail(t, "/healthz while run retries its first connection: %d %s, want 503 \"not streaming\"", code,
		     body ? body : "(no answer)");
	free(body);
	if (!wc_signal(&t->wc, SIGTERM, 10, err, sizeof err))
		return fail_err(t, "stopping walcount", err);
	return ok;
}

bool test_startup_order(struct ctx *t)
{
	char listen_addr[64], st[32];
	int port, status;
	int fd = occupy_port(&port);

	if (fd < 0)
		return fail(t, "cannot occupy a port on 127.0.0.1");
	snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
	const char *args[] = {"run", "--config", t->wc.config, NULL};
	char *out = NULL, *errtext = NULL;
	bool ok = configure(t, &(struct wc_opts){.metrics_listen = listen_addr}) &&
		  run_walcount(t, "startup-port-in-use", args, &status, &out, &errtext);
	close(fd);
	if (!ok)
		return false;
	int lines = count_in(out, "\n") + count_in(errtext, "\n");
	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) == 0))
		ok = fail(t, "run with its metrics port in use ended with %s, want a non-zero exit",
			  it_status_text(status, st, sizeof st));
	if (ok && (lines != 1 || strstr(errtext, listen_addr) == NULL))
		ok = fail(t, "run with its metrics port in use printed %d lines, want one naming %s: %.600s%.600s", lines,
			  listen_addr, out, errtext);
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "metrics port in use: exit %d, one line: %.*s; nothing created; /healthz 503 \"not streaming\" "
			 "before the first connection",
			 WEXITSTATUS(status), (int) strcspn(errtext, "\n"), errtext);
	free(out);
	free(errtext);
	return ok && nothing_created(t) && health_before_streaming(t);
}
