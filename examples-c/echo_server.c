/*
 * echo_server: an echo server made only of Begin/End calls and their callbacks.
 *
 *   echo_server PORT CONNECTIONS
 *
 * Listens on 127.0.0.1:PORT (0 = any free port; prints "listening on PORT"), accepts CONNECTIONS
 * connections with a BeginAccept chain and echoes each one with its own chain
 * BeginReceive -> BeginSend -> BeginReceive ... until the client closes. Exits when all
 * CONNECTIONS have closed. Pairs with echo_client.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "apmnet.h"

typedef struct server {
    apm_socket *listener;
    int to_accept;           /* accept chain only: one accept is pending at a time */
    int open, failed;        /* guarded by lock: connections accepted and not yet closed */
    int accepting;           /* guarded by lock: the accept chain still runs */
    pthread_mutex_t lock;
    pthread_cond_t cond;
} server;

/* One per connection: a state machine that is either receiving or sending back what it received. */
typedef struct conn {
    server *srv;
    apm_socket *socket;
    int sending;
    size_t len, off;         /* while sending: buf[off..len) is still to go */
    uint8_t buf[16 * 1024];  /* must stay valid while an operation is pending: freed at close */
} conn;

static void report(const char *what, apm_status st) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "echo_server: %s: %s: %s\n", what, apm_status_name(st), msg);
}

/* Wakes main when nothing is left to do. */
static void update(server *srv, int opened, int closed, int accept_done, int failed) {
    pthread_mutex_lock(&srv->lock);
    srv->open += opened - closed;
    srv->failed |= failed;
    if (accept_done)
        srv->accepting = 0;
    if (!srv->accepting && srv->open == 0)
        pthread_cond_signal(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

static void conn_close(conn *c, int failed) {
    server *srv = c->srv;
    apm_socket_close(c->socket);        /* nothing is pending: the chain stops with us */
    free(c);
    update(srv, 0, 1, 0, failed);
}

/*
 * The .NET idiom for CompletedSynchronously, shared by both chains below. An operation that
 * completes inside Begin runs its callback right there, inline on this thread. Such a callback
 * must not call the next Begin itself: with a fast peer every operation may complete inline and the
 * stack would grow without bound. It sets this flag instead and returns, and the loop that called
 * Begin goes on. A callback that runs later on an engine thread (CompletedSynchronously == 0) is on
 * a fresh stack and starts a new loop there. The flag is per thread, so nothing races on it; a
 * callback sets it as its very last step, after any loop it ran itself.
 */
static _Thread_local int continue_inline;

static void on_io(apm_async_result *result, void *state);

/* Starts the connection's next operation, and the next, as long as they complete inside Begin. */
static void conn_loop(conn *c) {
    do {
        apm_async_result *result = NULL;
        apm_status st;
        continue_inline = 0;
        if (c->sending)
            st = apm_socket_begin_send(c->socket, c->buf, sizeof c->buf, c->off, c->len - c->off,
                                       on_io, c, &result);
        else
            st = apm_socket_begin_receive(c->socket, c->buf, sizeof c->buf, 0, sizeof c->buf,
                                          on_io, c, &result);
        if (st != APM_OK) {             /* Begin failed: no callback will run */
            report(c->sending ? "apm_socket_begin_send" : "apm_socket_begin_receive", st);
            conn_close(c, 1);
            return;
        }
        /* `result` is left alone: on_io may already have ended (released) it on another thread. */
    } while (continue_inline);
}

static void on_io(apm_async_result *result, void *state) {
    conn *c = state;
    int32_t sync = 0;
    size_t n = 0;
    apm_status st;

    apm_async_result_completed_synchronously(result, &sync); /* before End releases the handle */
    if (c->sending) {
        if ((st = apm_socket_end_send(c->socket, result, &n)) != APM_OK) {
            report("apm_socket_end_send", st);
            conn_close(c, 1);
            return;
        }
        c->off += n;
        c->sending = c->off < c->len;   /* all echoed: receive again */
    } else {
        if ((st = apm_socket_end_receive(c->socket, result, &n)) != APM_OK) {
            report("apm_socket_end_receive", st);
            conn_close(c, 1);
            return;
        }
        if (n == 0) {                   /* the client closed: so do we */
            conn_close(c, 0);
            return;
        }
        c->len = n;
        c->off = 0;
        c->sending = 1;
    }
    if (sync)
        continue_inline = 1;
    else
        conn_loop(c);
}

static void on_accepted(apm_async_result *result, void *state);

static void accept_loop(server *srv) {
    do {
        apm_async_result *result = NULL;
        continue_inline = 0;
        apm_status st = apm_socket_begin_accept(srv->listener, on_accepted, srv, &result);
        if (st != APM_OK) {
            report("apm_socket_begin_accept", st);
            update(srv, 0, 0, 1, 1);
            return;
        }
    } while (continue_inline);
}

static void on_accepted(apm_async_result *result, void *state) {
    server *srv = state;
    int32_t sync = 0;
    apm_socket *accepted = NULL;

    apm_async_result_completed_synchronously(result, &sync);
    apm_status st = apm_socket_end_accept(srv->listener, result, &accepted);
    if (st != APM_OK) {
        report("apm_socket_end_accept", st);
        update(srv, 0, 0, 1, 1);
        return;
    }
    int last = --srv->to_accept == 0;
    update(srv, 1, 0, last, 0);

    conn *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "echo_server: out of memory\n");
        apm_socket_close(accepted);
        update(srv, 0, 1, 0, 1);
    } else {
        c->srv = srv;
        c->socket = accepted;
        conn_loop(c);                   /* runs until its first operation is pending */
    }
    if (last)
        return;                         /* accepted all we wanted: the accept chain ends */
    if (sync)
        continue_inline = 1;            /* last step, after conn_loop has used the flag */
    else
        accept_loop(srv);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, in order, also into a pipe or a file */
    if (argc != 3 || atoi(argv[2]) < 1) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS\n", argv[0]);
        return 2;
    }
    static server srv = {.accepting = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    srv.to_accept = atoi(argv[2]);

    apm_status st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                      APM_PROTOCOL_TYPE_TCP, &srv.listener);
    if (st != APM_OK) { report("apm_socket_create", st); return 1; }
    if ((st = apm_socket_bind(srv.listener, "127.0.0.1", atoi(argv[1]))) != APM_OK) {
        report("apm_socket_bind", st);
        return 1;
    }
    if ((st = apm_socket_listen(srv.listener, 64)) != APM_OK) { report("apm_socket_listen", st); return 1; }
    char address[64];
    int32_t port = 0;
    if ((st = apm_socket_get_local_endpoint(srv.listener, address, sizeof address, &port)) != APM_OK) {
        report("apm_socket_get_local_endpoint", st);
        return 1;
    }
    printf("listening on %d\n", (int)port);
    fflush(stdout);

    accept_loop(&srv);

    pthread_mutex_lock(&srv.lock);
    while (srv.accepting || srv.open > 0)
        pthread_cond_wait(&srv.cond, &srv.lock);
    int failed = srv.failed;
    pthread_mutex_unlock(&srv.lock);

    printf("echo server: served %s connections, %s\n", argv[2], failed ? "with errors" : "all closed cleanly");
    apm_socket_close(srv.listener);
    apm_runtime_shutdown();
    return failed ? 1 : 0;
}
