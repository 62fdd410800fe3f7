/*
 * negotiate_server: a NegotiateStream server (NTLM, or Kerberos from the keytab) that echoes what an
 * authenticated client sends, with BeginAuthenticateAsServer and BeginRead/BeginWrite chains.
 *
 *   negotiate_server PORT USERS_FILE [LEVEL]
 *
 * Listens on 127.0.0.1:PORT (0 = any free port; prints "listening on PORT"), accepts one client,
 * authenticates it against USERS_FILE (lines DOMAIN:USER:PASSWORD) at LEVEL (None, Sign or
 * EncryptAndSign, the default), prints who it is, echoes until the client closes, then exits.
 * Pairs with negotiate_client.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apmnet.h"

typedef struct server {
    apm_stream *stream;
    uint8_t buf[64 * 1024];      /* valid while a read or write is pending */
    size_t echoed, len;
    int sending;                 /* echoing buf[0..len) back, else reading */
    apm_status failed;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} server;

static void report(const char *what, apm_status st) {
    char msg[512] = "", inner[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    apm_last_error_inner_message(inner, sizeof inner, &len);
    fprintf(stderr, "negotiate_server: %s: %s: %s%s%s\n", what, apm_status_name(st), msg,
            inner[0] ? " / " : "", inner);
}

static void finish(server *s, apm_status st) {
    pthread_mutex_lock(&s->lock);
    s->failed = st;
    s->done = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* The .NET idiom for CompletedSynchronously (as echo_server.c): a callback that ran inline inside
 * Begin sets this flag rather than calling the next Begin, and the loop that called Begin goes on;
 * one that ran later on an engine thread starts a new loop there. */
static _Thread_local int continue_inline;

static void on_io(apm_async_result *result, void *state);

/* BeginRead, then BeginWrite of what came, then BeginRead ... */
static void echo_loop(server *s) {
    do {
        apm_async_result *result = NULL;
        apm_status st;
        continue_inline = 0;
        if (s->sending)
            st = apm_stream_begin_write(s->stream, s->buf, sizeof s->buf, 0, s->len, on_io, s, &result);
        else
            st = apm_stream_begin_read(s->stream, s->buf, sizeof s->buf, 0, sizeof s->buf, on_io, s, &result);
        if (st != APM_OK) {
            report(s->sending ? "BeginWrite" : "BeginRead", st);
            finish(s, st);
            return;
        }
    } while (continue_inline);
}

static void on_io(apm_async_result *result, void *state) {
    server *s = state;
    int32_t sync = 0;
    size_t n = 0;
    apm_status st;
    apm_async_result_completed_synchronously(result, &sync); /* before End releases the handle */
    if (s->sending) {
        if ((st = apm_stream_end_write(s->stream, result)) != APM_OK) {
            report("EndWrite", st);
            finish(s, st);
            return;
        }
        s->sending = 0;
    } else {
        if ((st = apm_stream_end_read(s->stream, result, &n)) != APM_OK || n == 0) {
            if (st != APM_OK)
                report("EndRead", st);
            finish(s, st);       /* n == 0: the client closed */
            return;
        }
        s->echoed += n;
        s->len = n;
        s->sending = 1;
    }
    if (sync)
        continue_inline = 1;
    else
        echo_loop(s);
}

static void on_authenticated(apm_async_result *r, void *state) {
    server *s = state;
    char name[256] = "", package[32] = "";
    int32_t encrypted = 0, signed_ = 0;
    apm_status st = apm_negotiate_stream_end_authenticate_as_server(s->stream, r);
    if (st != APM_OK) {
        report("EndAuthenticateAsServer", st);
        finish(s, st);
        return;
    }
    apm_negotiate_stream_get_remote_identity_name(s->stream, name, sizeof name, NULL);
    apm_negotiate_stream_get_remote_identity_authentication_type(s->stream, package, sizeof package, NULL);
    apm_negotiate_stream_is_encrypted(s->stream, &encrypted);
    apm_negotiate_stream_is_signed(s->stream, &signed_);
    printf("authenticated %s with %s (encrypted %d, signed %d)\n", name, package, encrypted, signed_);
    fflush(stdout);
    echo_loop(s);
}

static int32_t level_of(const char *name) {
    if (strcmp(name, "None") == 0)
        return APM_PROTECTION_LEVEL_NONE;
    if (strcmp(name, "Sign") == 0)
        return APM_PROTECTION_LEVEL_SIGN;
    return APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN;
}

int main(int argc, char **argv) {
    server s;
    apm_socket *listener = NULL, *accepted = NULL;
    apm_stream *ns = NULL;
    apm_credential *users = NULL;
    apm_async_result *r = NULL;
    char addr[64];
    int32_t port = 0;
    apm_status st;
    if (argc < 3) {
        fprintf(stderr, "usage: negotiate_server PORT USERS_FILE [None|Sign|EncryptAndSign]\n");
        return 2;
    }
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    if ((st = apm_credential_create_from_file(argv[2], &users)) != APM_OK
        || (st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP,
                                   &listener)) != APM_OK
        || (st = apm_socket_bind(listener, "127.0.0.1", atoi(argv[1]))) != APM_OK
        || (st = apm_socket_listen(listener, 1)) != APM_OK
        || (st = apm_socket_get_local_endpoint(listener, addr, sizeof addr, &port)) != APM_OK) {
        report("setting up", st);
        return 1;
    }
    printf("listening on %d\n", (int)port);
    fflush(stdout);
    if ((st = apm_socket_accept(listener, &accepted)) != APM_OK
        || (st = apm_network_stream_create(accepted, 1, &ns)) != APM_OK
        || (st = apm_negotiate_stream_create(ns, 0, &s.stream)) != APM_OK) {
        report("accepting", st);
        return 1;
    }
    st = apm_negotiate_stream_begin_authenticate_as_server(
        s.stream, users, APM_POLICY_ENFORCEMENT_NEVER, NULL, 0, NULL, 0, level_of(argc > 3 ? argv[3] : ""),
        APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, on_authenticated, &s, &r);
    if (st != APM_OK) {
        report("BeginAuthenticateAsServer", st);
        return 1;
    }
    pthread_mutex_lock(&s.lock);
    while (!s.done)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    printf("echoed %zu bytes; the client closed\n", s.echoed);
    apm_stream_close(s.stream);
    apm_credential_close(users);
    apm_socket_close(listener);
    apm_runtime_shutdown();
    return s.failed == APM_OK ? 0 : 1;
}
