/*
 * send_file_client: send a file framed by a header and a trailer with BeginSendFile.
 *
 *   send_file_client HOST PORT FILE
 *
 * Connects to HOST:PORT, then BeginSendFile sends "HEADER\n", the file and "TRAILER\n" in one
 * operation (sendfile(2) inside the library: the file's bytes never pass through this program).
 * A progress callback reports the bytes sent so far; the completion callback calls EndSendFile.
 * Prints the byte count and the FNV-1a 64 checksum of header + file + trailer, computed here from
 * the file; send_file_server prints the same for what it received.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apmnet.h"

static const char header[] = "HEADER\n";
static const char trailer[] = "TRAILER\n";

typedef struct transfer {
    apm_socket *socket;
    int64_t total;           /* header + file + trailer */
    int64_t next_report;     /* progress is printed at each quarter */
    apm_status status;       /* of EndSendFile */
    int finished;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} transfer;

static uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t n) {
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void report(const char *what, apm_status st) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    int32_t socket_error = apm_last_error_socket_error(); /* .NET SocketError, 0 if none */
    if (socket_error != 0)
        fprintf(stderr, "send_file_client: %s: %s (SocketError %d): %s\n", what, apm_status_name(st),
                (int)socket_error, msg);
    else
        fprintf(stderr, "send_file_client: %s: %s: %s\n", what, apm_status_name(st), msg);
}

/* The checksum of what the server should receive, computed from the file on disk. */
static int local_checksum(const char *path, uint64_t *fnv) {
    static uint8_t buf[64 * 1024];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint64_t h = fnv1a64(0xcbf29ce484222325ULL, (const uint8_t *)header, strlen(header));
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        h = fnv1a64(h, buf, got);
    int ok = !ferror(f);
    fclose(f);
    *fnv = fnv1a64(h, (const uint8_t *)trailer, strlen(trailer));
    return ok;
}

/* Called as the bytes go out (on an engine thread, or inline inside Begin); must be quick. */
static void on_progress(apm_async_result *result, int64_t bytes_sent, void *state) {
    transfer *t = state;
    (void)result;
    if (bytes_sent >= t->next_report) {
        printf("progress: %" PRId64 " of %" PRId64 " bytes\n", bytes_sent, t->total);
        t->next_report += t->total / 4 > 0 ? t->total / 4 : 1;
    }
}

/* Runs exactly once, when the whole header + file + trailer is sent (or the send failed). */
static void on_sent(apm_async_result *result, void *state) {
    transfer *t = state;
    apm_status st = apm_socket_end_send_file(t->socket, result); /* releases `result` */
    if (st != APM_OK)
        report("apm_socket_end_send_file", st); /* the last error is this thread's: read it here */
    pthread_mutex_lock(&t->lock);
    t->status = st;
    t->finished = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, in order, also into a pipe or a file */
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT FILE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]);

    /* Only to print progress against; a missing file is for BeginSendFile to report. */
    static transfer t = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct stat file_info;
    int64_t file_size = stat(path, &file_info) == 0 ? (int64_t)file_info.st_size : 0;
    t.total = (int64_t)(strlen(header) + strlen(trailer)) + file_size;

    apm_status st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                      APM_PROTOCOL_TYPE_TCP, &t.socket);
    if (st != APM_OK) { report("apm_socket_create", st); return 1; }
    if ((st = apm_socket_connect(t.socket, host, port)) != APM_OK) {
        report("apm_socket_connect", st);
        apm_socket_close(t.socket);
        apm_runtime_shutdown();
        return 1;
    }
    printf("connected to %s:%d\n", host, port);

    /* header and trailer are static: Begin's buffers must stay valid until the operation completes. */
    apm_async_result *result = NULL;
    st = apm_socket_begin_send_file_with_progress(
        t.socket, path, (const uint8_t *)header, strlen(header), (const uint8_t *)trailer, strlen(trailer),
        APM_TRANSMIT_FILE_USE_DEFAULT_WORKER_THREAD, on_progress, on_sent, &t, &result);
    if (st != APM_OK) {                 /* e.g. APM_E_FILE_NOT_FOUND; on_sent will not run */
        report("apm_socket_begin_send_file_with_progress", st);
        apm_socket_close(t.socket);
        apm_runtime_shutdown();
        return 1;
    }

    pthread_mutex_lock(&t.lock);
    while (!t.finished)
        pthread_cond_wait(&t.cond, &t.lock);
    pthread_mutex_unlock(&t.lock);

    if (t.status == APM_OK) {
        /* Tell the server we are done: it receives until end of stream. */
        if ((st = apm_socket_shutdown(t.socket, APM_SOCKET_SHUTDOWN_SEND)) != APM_OK) {
            report("apm_socket_shutdown", st);
            t.status = st;
        }
        uint64_t fnv;
        if (!local_checksum(path, &fnv)) {
            perror(path);
            t.status = APM_E_IO;
        } else {
            printf("sent %" PRId64 " bytes (%zu header + %" PRId64 " file + %zu trailer), fnv1a64 %016" PRIx64 "\n",
                   t.total, strlen(header), file_size, strlen(trailer), fnv);
        }
    }
    apm_socket_close(t.socket);
    apm_runtime_shutdown();
    return t.status == APM_OK ? 0 : 1;
}
