/*
 * send_file_server: accept one connection and receive everything until the peer closes.
 *
 *   send_file_server PORT [OUTPUT_FILE]
 *
 * Listens on 127.0.0.1:PORT (0 = any free port; the chosen one is printed as "listening on PORT"),
 * accepts one connection with BeginAccept/EndAccept, then receives with a chain of
 * BeginReceive/EndReceive driven from the callbacks until end of stream. Prints the byte count and
 * the FNV-1a 64 checksum of what arrived, and writes the bytes to OUTPUT_FILE when one is given.
 * Pairs with send_file_client.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "apmnet.h"

/* Everything the receive chain needs; the callbacks get it as their state. */
typedef struct receiver {
    apm_socket *listener;
    apm_socket *conn;
    FILE *out;               /* NULL: checksum only */
    uint64_t total;
    uint64_t fnv;            /* FNV-1a 64 of the bytes so far */
    int failed;
    int finished;            /* guarded by lock; main waits for it */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint8_t buf[64 * 1024];  /* stays valid while a receive is pending: it lives as long as main */
} receiver;

static uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t n) {
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Prints the failed call, the status name and the library's message for this thread's last error. */
static void report(const char *what, apm_status st) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "send_file_server: %s: %s: %s\n", what, apm_status_name(st), msg);
}

static void finish(receiver *rx, int failed) {
    pthread_mutex_lock(&rx->lock);
    rx->failed |= failed;
    rx->finished = 1;
    pthread_cond_signal(&rx->cond);
    pthread_mutex_unlock(&rx->lock);
}

/*
 * Set by a callback that ran inline, inside the Begin call of this very thread, to ask that Begin's
 * caller go on with the next operation. It is per thread, so an engine thread running another
 * callback at the same moment cannot disturb it.
 */
static _Thread_local int continue_inline;

static void on_received(apm_async_result *result, void *state);

/*
 * Starts receives until one is left pending. The .NET idiom for CompletedSynchronously: when an
 * operation completes inside Begin, its callback runs right there on this thread; instead of starting
 * the next Begin itself (one stack frame deeper each time, without bound on a fast peer) it leaves
 * that to this loop. A callback that runs later on an engine thread starts a fresh loop there.
 */
static void receive_loop(receiver *rx) {
    do {
        apm_async_result *result = NULL;
        continue_inline = 0;
        apm_status st = apm_socket_begin_receive(rx->conn, rx->buf, sizeof rx->buf, 0, sizeof rx->buf,
                                                 on_received, rx, &result);
        if (st != APM_OK) {             /* Begin failed: the callback will not run */
            report("apm_socket_begin_receive", st);
            finish(rx, 1);
            return;
        }
        /* `result` is not touched here: the callback may already have ended (released) it. */
    } while (continue_inline);
}

static void on_received(apm_async_result *result, void *state) {
    receiver *rx = state;
    int32_t sync = 0;
    size_t n = 0;

    /* Read before End: End releases the result handle. */
    apm_async_result_completed_synchronously(result, &sync);
    apm_status st = apm_socket_end_receive(rx->conn, result, &n);
    if (st != APM_OK) {
        report("apm_socket_end_receive", st);
        finish(rx, 1);
        return;
    }
    if (n == 0) {                       /* end of stream: the client is done */
        finish(rx, 0);
        return;
    }
    rx->total += n;
    rx->fnv = fnv1a64(rx->fnv, rx->buf, n);
    if (rx->out && fwrite(rx->buf, 1, n, rx->out) != n) {
        perror("send_file_server: write");
        finish(rx, 1);
        return;
    }
    if (sync)
        continue_inline = 1;            /* we are inside receive_loop's Begin: it goes on */
    else
        receive_loop(rx);               /* an engine thread: start a new loop here */
}

static void on_accepted(apm_async_result *result, void *state) {
    receiver *rx = state;
    apm_status st = apm_socket_end_accept(rx->listener, result, &rx->conn);
    if (st != APM_OK) {
        report("apm_socket_end_accept", st);
        finish(rx, 1);
        return;
    }
    char address[64];
    int32_t port = 0;
    if (apm_socket_get_remote_endpoint(rx->conn, address, sizeof address, &port) == APM_OK)
        printf("accepted a connection from %s:%d\n", address, (int)port);
    receive_loop(rx);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, in order, also into a pipe or a file */
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [OUTPUT_FILE]\n", argv[0]);
        return 2;
    }
    static receiver rx = {.fnv = 0xcbf29ce484222325ULL,
                          .lock = PTHREAD_MUTEX_INITIALIZER,
                          .cond = PTHREAD_COND_INITIALIZER};
    if (argc == 3 && !(rx.out = fopen(argv[2], "wb"))) {
        perror(argv[2]);
        return 1;
    }

    apm_status st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                      APM_PROTOCOL_TYPE_TCP, &rx.listener);
    if (st != APM_OK) { report("apm_socket_create", st); return 1; }
    if ((st = apm_socket_bind(rx.listener, "127.0.0.1", atoi(argv[1]))) != APM_OK) {
        report("apm_socket_bind", st);
        return 1;
    }
    if ((st = apm_socket_listen(rx.listener, 16)) != APM_OK) { report("apm_socket_listen", st); return 1; }

    char address[64];
    int32_t port = 0;
    if ((st = apm_socket_get_local_endpoint(rx.listener, address, sizeof address, &port)) != APM_OK) {
        report("apm_socket_get_local_endpoint", st);
        return 1;
    }
    printf("listening on %d\n", (int)port);
    fflush(stdout);                     /* whoever started us waits for this line */

    apm_async_result *result = NULL;
    if ((st = apm_socket_begin_accept(rx.listener, on_accepted, &rx, &result)) != APM_OK) {
        report("apm_socket_begin_accept", st);
        return 1;
    }

    /* The callbacks do the work; wait until the chain reports the end. */
    pthread_mutex_lock(&rx.lock);
    while (!rx.finished)
        pthread_cond_wait(&rx.cond, &rx.lock);
    pthread_mutex_unlock(&rx.lock);

    if (!rx.failed)
        printf("received %" PRIu64 " bytes, fnv1a64 %016" PRIx64 "\n", rx.total, rx.fnv);
    if (rx.conn)
        apm_socket_close(rx.conn);
    apm_socket_close(rx.listener);
    apm_runtime_shutdown();             /* joins the library's threads: a clean exit */
    if (rx.out && fclose(rx.out) != 0) {
        perror(argv[2]);
        return 1;
    }
    return rx.failed ? 1 : 0;
}
