/*
 * negotiate_client: a NegotiateStream client: authenticates with a user name and password
 * (NTLM, or Kerberos for user@REALM when a ticket can be had), sends messages and checks the echo.
 *
 *   negotiate_client HOST PORT USER PASSWORD [LEVEL [COUNT]]
 *
 * USER is "DOMAIN\user", "user@REALM" or "user". LEVEL is None, Sign or EncryptAndSign (the
 * default). Sends COUNT (default 16) messages of growing size, up to 256 KiB, each with
 * BeginWrite/EndWrite, reads each one back with Read, compares, and prints what was negotiated.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apmnet.h"

static int fail(const char *what, apm_status st) {
    char msg[512] = "", inner[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    apm_last_error_inner_message(inner, sizeof inner, &len);
    fprintf(stderr, "negotiate_client: %s: %s: %s%s%s\n", what, apm_status_name(st), msg, inner[0] ? " / " : "",
            inner);
    return 1;
}

int main(int argc, char **argv) {
    apm_socket *sock = NULL;
    apm_stream *ns = NULL, *st = NULL;
    apm_credential *cred = NULL;
    apm_async_result *r = NULL;
    int32_t level = APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, encrypted = 0, signed_ = 0;
    char package[32] = "";
    int count = argc > 6 ? atoi(argv[6]) : 16, i;
    size_t total = 0;
    apm_status s;
    if (argc < 5) {
        fprintf(stderr, "usage: negotiate_client HOST PORT USER PASSWORD [None|Sign|EncryptAndSign [COUNT]]\n");
        return 2;
    }
    if (argc > 5 && strcmp(argv[5], "None") == 0)
        level = APM_PROTECTION_LEVEL_NONE;
    else if (argc > 5 && strcmp(argv[5], "Sign") == 0)
        level = APM_PROTECTION_LEVEL_SIGN;
    if ((s = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP,
                               &sock)) != APM_OK
        || (s = apm_socket_connect(sock, argv[1], atoi(argv[2]))) != APM_OK)
        return fail("connecting", s);
    if ((s = apm_network_stream_create(sock, 1, &ns)) != APM_OK
        || (s = apm_negotiate_stream_create(ns, 0, &st)) != APM_OK
        || (s = apm_credential_create(argv[3], argv[4], NULL, &cred)) != APM_OK)
        return fail("creating the stream", s);
    /* BeginAuthenticateAsClient, then End (which waits): the target is the SPN host/HOST. */
    {
        char spn[300];
        snprintf(spn, sizeof spn, "host/%s", strcmp(argv[1], "127.0.0.1") == 0 ? "localhost" : argv[1]);
        if ((s = apm_negotiate_stream_begin_authenticate_as_client(st, cred, spn, NULL, 0, level,
                                                                   APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, NULL,
                                                                   NULL, &r)) != APM_OK)
            return fail("BeginAuthenticateAsClient", s);
        if ((s = apm_negotiate_stream_end_authenticate_as_client(st, r)) != APM_OK)
            return fail("EndAuthenticateAsClient", s);
    }
    apm_negotiate_stream_get_remote_identity_authentication_type(st, package, sizeof package, NULL);
    apm_negotiate_stream_is_encrypted(st, &encrypted);
    apm_negotiate_stream_is_signed(st, &signed_);
    printf("authenticated with %s (encrypted %d, signed %d)\n", package, encrypted, signed_);
    for (i = 0; i < count; i++) {
        size_t n = (size_t)1 << (i % 19), got = 0, k = 0, j;
        uint8_t *out = malloc(n), *back = malloc(n);
        if (out == NULL || back == NULL)
            return fail("malloc", APM_E_OUT_OF_MEMORY);
        for (j = 0; j < n; j++)
            out[j] = (uint8_t)(j * 7 + (size_t)i);
        if ((s = apm_stream_begin_write(st, out, n, 0, n, NULL, NULL, &r)) != APM_OK
            || (s = apm_stream_end_write(st, r)) != APM_OK)
            return fail("writing", s);
        while (got < n) {
            if ((s = apm_stream_read(st, back, n, got, n - got, &k)) != APM_OK)
                return fail("reading", s);
            if (k == 0)
                return fail("reading: the server closed", APM_E_IO);
            got += k;
        }
        if (memcmp(out, back, n) != 0) {
            fprintf(stderr, "negotiate_client: message %d came back different\n", i);
            return 1;
        }
        total += n;
        free(out);
        free(back);
    }
    printf("%d messages, %zu bytes, echoed intact\n", count, total);
    apm_stream_close(st);
    apm_credential_close(cred);
    apm_runtime_shutdown();
    return 0;
}
