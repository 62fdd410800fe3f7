/*
 * cbt_auth: integrated authentication with extended protection, done by the application.
 *
 * The client POSTs with HttpWebRequest over https and takes the TransportContext that
 * EndGetRequestStream hands out. With its tls-server-end-point channel binding it builds its own
 * Negotiate (NTLM) tokens with apm_negotiate_authentication and sends them in
 * "Authorization: Negotiate <base64>" headers, reading the server's answers from the
 * "WWW-Authenticate: Negotiate <base64>" headers of the 401 responses. NTLM authenticates the
 * connection, so the requests go over one kept-alive connection.
 *
 * The server is a small https server on apm_socket and SslStream that authenticates its clients
 * with apm_negotiate_authentication as server, bound to its own TLS channel with the policy
 * Always: a client that did not bind to this very channel is refused (BadBinding).
 *
 *   cbt_auth server USERS CERT.pem KEY.pem    (USERS: DOMAIN:USER:PASSWORD lines; prints "listening on PORT")
 *   cbt_auth client URL CA.pem USER PASSWORD [unbound]
 *
 * USER is DOMAIN\user. With "unbound" the client sends no channel binding, and the server
 * refuses it: what stops a token relayed from another TLS connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apmnet.h"

static int fail(const char *what, apm_status st)
{
    char msg[512];
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "%s: %s: %s\n", what, apm_status_name(st), msg);
    return 1;
}

/* ---- base64, for the tokens in HTTP headers ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *out++ = b64[v >> 18 & 63];
        *out++ = b64[v >> 12 & 63];
        *out++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *out++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *out = '\0';
}

/* Decodes up to the first character that is not base64 ('=' included); the number of bytes. */
static size_t base64_decode(const char *in, uint8_t *out, size_t cap)
{
    uint32_t v = 0;
    int bits = 0;
    size_t n = 0;
    const char *p;
    for (; *in != '\0' && (p = strchr(b64, *in)) != NULL; in++) {
        v = v << 6 | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8 && n < cap) {
            bits -= 8;
            out[n++] = (uint8_t)(v >> bits);
        }
    }
    return n;
}

enum { TOKEN_MAX = 8192 };

/* ---- the client ---- */

/* One POST over the kept-alive connection, with `token` (NULL: none) as its Authorization.
 * Writes the binding context of the first request to *context, the status code to *code and the
 * server's token (WWW-Authenticate: Negotiate ...) to `answer`. */
static int post(const char *url, const char *ca, const char *token, apm_transport_context **context, int32_t *code,
                uint8_t *answer, size_t *answer_len)
{
    apm_http_request *request = NULL;
    apm_http_response *response = NULL;
    apm_async_result *result = NULL;
    apm_stream *stream = NULL;
    apm_transport_context *ctx = NULL;
    char header[TOKEN_MAX * 2], body[256];
    size_t len = 0, n = 0;
    int32_t found = 0;
    apm_status st;

    if ((st = apm_http_request_create(url, &request)) != APM_OK)
        return fail("create", st);
    apm_http_request_set_method(request, "POST");
    apm_http_request_set_content_length(request, 0);
    apm_http_request_set_trusted_ca_file(request, ca);
    if (token != NULL) {
        snprintf(header, sizeof header, "Negotiate %s", token);
        apm_http_request_set_header(request, "Authorization", header);
    }
    if ((st = apm_http_request_begin_get_request_stream(request, NULL, NULL, &result)) != APM_OK
        || (st = apm_http_request_end_get_request_stream(request, result, &stream, &ctx)) != APM_OK)
        return fail("GetRequestStream", st);
    apm_stream_close(stream);
    if (*context == NULL)
        *context = ctx; /* The TLS channel this connection runs over: what the token binds to. */
    else
        apm_transport_context_close(ctx);

    st = apm_http_request_begin_get_response(request, NULL, NULL, &result);
    if (st == APM_OK)
        st = apm_http_request_end_get_response(request, result, &response);
    /* A 401 is a WebException (ProtocolError) whose response is still readable. */
    if (st == APM_E_WEB && apm_last_error_http_status() == 401)
        st = apm_http_response_from_last_error(&response);
    if (st != APM_OK)
        return fail("GetResponse", st);
    apm_http_response_get_status_code(response, code);
    *answer_len = 0;
    if (apm_http_response_get_header(response, "WWW-Authenticate", header, sizeof header, &len, &found) == APM_OK
        && found && strncmp(header, "Negotiate ", 10) == 0)
        *answer_len = base64_decode(header + 10, answer, TOKEN_MAX);
    if (apm_http_response_get_response_stream(response, &stream) == APM_OK) {
        if (apm_stream_read(stream, (uint8_t *)body, sizeof body - 1, 0, sizeof body - 1, &n) == APM_OK) {
            body[n] = '\0';
            printf("  %d: %s\n", (int)*code, body);
        }
        apm_stream_close(stream);
    }
    apm_http_response_close(response);
    apm_http_request_close(request);
    return 0;
}

static int client(const char *url, const char *ca, const char *user, const char *password, int bind)
{
    apm_transport_context *context = NULL;
    apm_negotiate_authentication *auth = NULL;
    apm_credential *credential = NULL;
    uint8_t blob[TOKEN_MAX], answer[TOKEN_MAX];
    char token[TOKEN_MAX * 2];
    size_t blob_len = 0, answer_len = 0;
    int32_t code = 0, status = APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED;
    apm_status st;
    int round;

    printf("POST %s without credentials\n", url);
    if (post(url, ca, NULL, &context, &code, answer, &answer_len) != 0)
        return 1;
    if (code != 401)
        return fprintf(stderr, "expected 401, got %d\n", (int)code), 1;

    /* Negotiate with NTLM, bound to the TLS channel of EndGetRequestStream's TransportContext. */
    if ((st = apm_credential_create(user, password, NULL, &credential)) != APM_OK
        || (st = apm_negotiate_authentication_create_client("Negotiate", credential, "HTTP/localhost",
                                                            bind ? context : NULL,
                                                            APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                                            APM_PROTECTION_LEVEL_NONE, 1,
                                                            APM_TOKEN_IMPERSONATION_LEVEL_IMPERSONATION, &auth)) != APM_OK)
        return fail("NegotiateAuthentication", st);
    apm_credential_close(credential);
    apm_transport_context_close(context);
    answer_len = 0;
    for (round = 0; round < 4 && status == APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED; round++) {
        if ((st = apm_negotiate_authentication_get_outgoing_blob(auth, answer, answer_len, blob, sizeof blob,
                                                                 &blob_len, &status)) != APM_OK)
            return fail("GetOutgoingBlob", st);
        if (status > APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED)
            return fprintf(stderr, "GetOutgoingBlob: status %d\n", (int)status), 1;
        if (blob_len == 0)
            break;
        base64_encode(blob, blob_len, token);
        printf("POST with Authorization: Negotiate (%zu-byte token)\n", blob_len);
        if (post(url, ca, token, &context, &code, answer, &answer_len) != 0)
            return 1;
        if (code == 200)
            break;
        if (answer_len == 0) {
            fprintf(stderr, "the server refused the token\n");
            break;
        }
    }
    apm_negotiate_authentication_close(auth);
    apm_runtime_shutdown();
    return code == 200 ? 0 : 1;
}

/* ---- the server ---- */

/* Reads one request head (and drops a body) from `tls`; the Negotiate token of its
 * Authorization header, base64-decoded, into `token`. -1 once the client has closed. */
static int read_request(apm_stream *tls, uint8_t *token, size_t *token_len)
{
    char head[TOKEN_MAX * 2 + 1024], *line, *save = NULL;
    size_t used = 0, n = 0, content_length = 0;
    *token_len = 0;
    while (used < sizeof head - 1 && (used < 4 || memcmp(head + used - 4, "\r\n\r\n", 4) != 0)) {
        if (apm_stream_read(tls, (uint8_t *)head, sizeof head - 1, used, 1, &n) != APM_OK || n == 0)
            return -1;
        used += n;
    }
    head[used] = '\0';
    for (line = strtok_r(head, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = (size_t)strtoul(line + 15, NULL, 10);
        if (strncasecmp(line, "Authorization: Negotiate ", 25) == 0)
            *token_len = base64_decode(line + 25, token, TOKEN_MAX);
    }
    while (content_length > 0) {
        uint8_t sink[256];
        size_t want = content_length < sizeof sink ? content_length : sizeof sink;
        if (apm_stream_read(tls, sink, sizeof sink, 0, want, &n) != APM_OK || n == 0)
            return -1;
        content_length -= n;
    }
    return 0;
}

/* An answer: 401 with "WWW-Authenticate: Negotiate [token]", or 200. */
static void respond(apm_stream *tls, int code, const uint8_t *token, size_t token_len, const char *body)
{
    char head[TOKEN_MAX * 2 + 512], challenge[TOKEN_MAX * 2 + 64] = "";
    int n;
    if (code == 401) {
        char b64token[TOKEN_MAX * 2] = "";
        base64_encode(token, token_len, b64token);
        snprintf(challenge, sizeof challenge, "WWW-Authenticate: Negotiate%s%s\r\n", token_len > 0 ? " " : "", b64token);
    }
    n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                 code, code == 200 ? "OK" : "Unauthorized", challenge, strlen(body), body);
    apm_stream_write(tls, (const uint8_t *)head, sizeof head, 0, (size_t)n);
}

static int server(const char *users_file, const char *cert_file, const char *key_file)
{
    apm_socket *listener = NULL, *accepted = NULL;
    apm_stream *net = NULL, *tls = NULL;
    apm_certificate *cert = NULL;
    apm_credential *users = NULL;
    apm_transport_context *channel = NULL;
    apm_negotiate_authentication *auth = NULL;
    static uint8_t pem[2][16384];
    size_t pem_len[2];
    uint8_t token[TOKEN_MAX], reply[TOKEN_MAX];
    size_t token_len = 0, reply_len = 0;
    char addr[64], name[256], body[512];
    int32_t port = 0, status = 0;
    apm_status st;
    int done = 0;
    const char *files[2] = {cert_file, key_file};

    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f == NULL)
            return perror(files[i]), 2;
        pem_len[i] = fread(pem[i], 1, sizeof pem[i], f);
        fclose(f);
    }
    if ((st = apm_certificate_load_pem(pem[0], pem_len[0], pem[1], pem_len[1], &cert)) != APM_OK
        || (st = apm_credential_create_from_file(users_file, &users)) != APM_OK
        || (st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP,
                                   &listener)) != APM_OK
        || (st = apm_socket_bind(listener, "127.0.0.1", 0)) != APM_OK
        || (st = apm_socket_listen(listener, 4)) != APM_OK
        || (st = apm_socket_get_local_endpoint(listener, addr, sizeof addr, &port)) != APM_OK)
        return fail("server setup", st);
    printf("listening on %d\n", (int)port);
    fflush(stdout);

    /* One client connection; its requests until one authenticates. */
    if ((st = apm_socket_accept(listener, &accepted)) != APM_OK
        || (st = apm_network_stream_create(accepted, 1, &net)) != APM_OK
        || (st = apm_ssl_stream_create(net, 0, &tls)) != APM_OK
        || (st = apm_ssl_stream_authenticate_as_server(tls, cert, 0, APM_SSL_PROTOCOLS_NONE, 0)) != APM_OK
        || (st = apm_ssl_stream_get_transport_context(tls, &channel)) != APM_OK)
        return fail("accept", st);
    /* The client must bind to this channel (policy Always), with NTLM or Kerberos. */
    if ((st = apm_negotiate_authentication_create_server("Negotiate", users, channel, APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                                         APM_POLICY_ENFORCEMENT_ALWAYS, NULL, 0,
                                                         APM_PROTECTION_LEVEL_NONE,
                                                         APM_TOKEN_IMPERSONATION_LEVEL_NONE, &auth)) != APM_OK)
        return fail("NegotiateAuthentication", st);
    while (!done && read_request(tls, token, &token_len) == 0) {
        if (token_len == 0) {
            respond(tls, 401, NULL, 0, "authenticate, please");
            continue;
        }
        if ((st = apm_negotiate_authentication_get_outgoing_blob(auth, token, token_len, reply, sizeof reply,
                                                                 &reply_len, &status)) != APM_OK)
            return fail("GetOutgoingBlob", st);
        if (status == APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED) {
            respond(tls, 401, reply, reply_len, "continue");
        } else if (status == APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED) {
            size_t n = 0;
            apm_negotiate_authentication_get_remote_identity_name(auth, name, sizeof name, &n);
            snprintf(body, sizeof body, "authenticated %s, channel binding checked", name);
            printf("%s\n", body);
            respond(tls, 200, NULL, 0, body);
            done = 1;
        } else {
            snprintf(body, sizeof body, "refused: NegotiateAuthenticationStatusCode %d%s", (int)status,
                     status == APM_NEGOTIATE_AUTHENTICATION_STATUS_BAD_BINDING ? " (BadBinding)" : "");
            printf("%s\n", body);
            respond(tls, 401, NULL, 0, body);
            done = 2;
        }
    }
    apm_negotiate_authentication_close(auth);
    apm_transport_context_close(channel);
    apm_stream_close(tls);
    apm_socket_close(listener);
    apm_certificate_close(cert);
    apm_credential_close(users);
    apm_runtime_shutdown();
    return done == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "server") == 0)
        return server(argv[2], argv[3], argv[4]);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "client") == 0)
        return client(argv[2], argv[3], argv[4], argv[5], argc == 6 || strcmp(argv[6], "unbound") != 0);
    fprintf(stderr, "usage: %s server USERS CERT.pem KEY.pem\n       %s client URL CA.pem DOMAIN\\USER PASSWORD [unbound]\n",
            argv[0], argv[0]);
    return 2;
}
