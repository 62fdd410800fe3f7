/*
 * echo_client: several concurrent connections, each a chain of Begin/End calls on a network stream.
 *
 *   echo_client HOST PORT [CONNECTIONS [MESSAGES]]
 *
 * Opens CONNECTIONS connections (default 4) at once with BeginConnect. On each, a NetworkStream
 * writes MESSAGES messages (default 8) one after the other with BeginWrite and reads each echo back
 * with BeginRead (it may arrive in pieces), checking it byte for byte. Exits non-zero if anything
 * went wrong. Pairs with echo_server.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apmnet.h"

typedef struct client {
    int id, messages;
    apm_socket *socket;
    apm_stream *stream;
    int sent;                /* messages echoed so far */
    int reading;             /* 0: writing out[], 1: reading the echo into in[] */
    char out[64];
    size_t out_len, in_len;
    uint8_t in[64];
} client;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int running, failures;    /* guarded by lock */

static void report(const client *c, const char *what, apm_status st) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "echo_client: connection %d: %s: %s (SocketError %d): %s\n", c->id, what,
            apm_status_name(st), (int)apm_last_error_socket_error(), msg);
}

/* The end of one connection, good or bad: close the stream (it owns the socket) and tell main. */
static void client_done(client *c, int failed) {
    if (c->stream)
        apm_stream_close(c->stream);
    else
        apm_socket_close(c->socket);
    if (!failed)
        printf("connection %d: %d messages echoed\n", c->id, c->messages);
    pthread_mutex_lock(&lock);
    failures += failed;
    if (--running == 0)
        pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static void next_message(client *c) {
    snprintf(c->out, sizeof c->out, "message %d of connection %d\n", c->sent + 1, c->id);
    c->out_len = strlen(c->out);
    c->in_len = 0;
    c->reading = 0;
}

/* See echo_server.c: a callback that ran inline inside Begin lets Begin's caller loop go on. */
static _Thread_local int continue_inline;

static void on_io(apm_async_result *result, void *state);

static void client_loop(client *c) {
    do {
        apm_async_result *result = NULL;
        apm_status st;
        continue_inline = 0;
        if (c->reading)   /* read at most what is missing of this echo */
            st = apm_stream_begin_read(c->stream, c->in, sizeof c->in, c->in_len, c->out_len - c->in_len,
                                       on_io, c, &result);
        else
            st = apm_stream_begin_write(c->stream, (const uint8_t *)c->out, sizeof c->out, 0, c->out_len,
                                        on_io, c, &result);
        if (st != APM_OK) {
            report(c, c->reading ? "apm_stream_begin_read" : "apm_stream_begin_write", st);
            client_done(c, 1);
            return;
        }
    } while (continue_inline);
}

static void on_io(apm_async_result *result, void *state) {
    client *c = state;
    int32_t sync = 0;
    apm_status st;

    apm_async_result_completed_synchronously(result, &sync); /* before End releases the handle */
    if (!c->reading) {
        /* A stream write completes only when every byte is sent. */
        if ((st = apm_stream_end_write(c->stream, result)) != APM_OK) {
            report(c, "apm_stream_end_write", st);
            client_done(c, 1);
            return;
        }
        c->reading = 1;
    } else {
        size_t n = 0;
        if ((st = apm_stream_end_read(c->stream, result, &n)) != APM_OK) {
            report(c, "apm_stream_end_read", st);
            client_done(c, 1);
            return;
        }
        if (n == 0) {
            fprintf(stderr, "echo_client: connection %d: the server closed early\n", c->id);
            client_done(c, 1);
            return;
        }
        c->in_len += n;
        if (c->in_len == c->out_len) {  /* the whole echo is here */
            if (memcmp(c->in, c->out, c->out_len) != 0) {
                fprintf(stderr, "echo_client: connection %d: wrong echo for message %d\n", c->id, c->sent + 1);
                client_done(c, 1);
                return;
            }
            if (++c->sent == c->messages) {
                client_done(c, 0);
                return;
            }
            next_message(c);
        }
    }
    if (sync)
        continue_inline = 1;
    else
        client_loop(c);
}

static void on_connected(apm_async_result *result, void *state) {
    client *c = state;
    apm_status st = apm_socket_end_connect(c->socket, result);
    if (st != APM_OK) {
        report(c, "apm_socket_end_connect", st);
        client_done(c, 1);
        return;
    }
    /* The stream takes the socket over (owns_socket = 1): closing the stream closes the socket. */
    if ((st = apm_network_stream_create(c->socket, 1, &c->stream)) != APM_OK) {
        report(c, "apm_network_stream_create", st);
        client_done(c, 1);
        return;
    }
    next_message(c);
    client_loop(c);   /* a fresh loop: its flag is read only by its own Begin calls */
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, in order, also into a pipe or a file */
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s HOST PORT [CONNECTIONS [MESSAGES]]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    int connections = argc > 3 ? atoi(argv[3]) : 4;
    int messages = argc > 4 ? atoi(argv[4]) : 8;
    if (connections < 1 || messages < 1) {
        fprintf(stderr, "echo_client: CONNECTIONS and MESSAGES must be at least 1\n");
        return 2;
    }

    client *clients = calloc((size_t)connections, sizeof *clients);
    if (!clients)
        return 1;
    running = connections;
    for (int i = 0; i < connections; i++) {
        client *c = &clients[i];
        c->id = i + 1;
        c->messages = messages;
        apm_status st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                          APM_PROTOCOL_TYPE_TCP, &c->socket);
        apm_async_result *result = NULL;
        if (st == APM_OK)
            st = apm_socket_begin_connect(c->socket, host, port, on_connected, c, &result);
        if (st != APM_OK) {             /* no callback will run for this one */
            report(c, "connect", st);
            if (c->socket)
                apm_socket_close(c->socket);
            pthread_mutex_lock(&lock);
            failures++;
            running--;
            pthread_mutex_unlock(&lock);
        }
    }

    pthread_mutex_lock(&lock);
    while (running > 0)
        pthread_cond_wait(&cond, &lock);
    int failed = failures;
    pthread_mutex_unlock(&lock);

    apm_runtime_shutdown();
    free(clients);   /* only now: the callbacks used these structs until the end */
    if (failed) {
        fprintf(stderr, "echo_client: %d of %d connections failed\n", failed, connections);
        return 1;
    }
    printf("echo client: %d connections x %d messages, every echo matched\n", connections, messages);
    return 0;
}
