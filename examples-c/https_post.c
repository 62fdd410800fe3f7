/*
 * https_post: POSTs a file with HttpWebRequest over https (Begin/EndGetRequestStream with its
 * TransportContext, the body in ContentLength-checked writes, Begin/EndGetResponse), then prints
 * the response and the TLS channel binding (tls-server-end-point, tls-unique) of the connection
 * the request went over.
 *
 *   https_post URL FILE [CA.pem]
 *
 * CA.pem (optional) is the only CA trusted for the server's certificate (else the system store).
 * A status >= 400 is a WebException (APM_E_WEB, ProtocolError) whose response is still readable:
 * see print_failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apmnet.h"

static int print_failure(const char *what, apm_status st)
{
    char msg[512];
    size_t len = 0;
    apm_http_response *response = NULL;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "%s: %s (WebExceptionStatus %d): %s\n", what, apm_status_name(st),
            apm_last_error_web_status(), msg);
    /* WebException.Response: a ProtocolError carries the response, body and all. */
    if (apm_http_response_from_last_error(&response) == APM_OK && response != NULL) {
        apm_stream *body = NULL;
        uint8_t buf[512];
        size_t n = 0;
        if (apm_http_response_get_response_stream(response, &body) == APM_OK) {
            if (apm_stream_read(body, buf, sizeof buf - 1, 0, sizeof buf - 1, &n) == APM_OK) {
                buf[n] = 0;
                fprintf(stderr, "  the server said (%d): %s\n", apm_last_error_http_status(), (char *)buf);
            }
            apm_stream_close(body);
        }
        apm_http_response_close(response);
    }
    return 1;
}

static void print_hex(const char *label, apm_transport_context *ctx, int32_t kind)
{
    uint8_t token[128];
    size_t len = 0;
    printf("%s: ", label);
    if (apm_transport_context_get_channel_binding_token(ctx, kind, token, sizeof token, &len) != APM_OK || len == 0)
        printf("(none)");
    for (size_t i = 0; i < len && i < sizeof token; i++)
        printf("%02x", token[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    apm_http_request *request = NULL;
    apm_async_result *result = NULL;
    apm_stream *stream = NULL, *body = NULL;
    apm_transport_context *context = NULL;
    apm_http_response *response = NULL;
    apm_status st;
    FILE *file;
    long size;
    uint8_t buf[65536];
    size_t n;
    int32_t code = 0;
    char text[256];
    size_t text_len = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s URL FILE [CA.pem]\n", argv[0]);
        return 2;
    }
    file = fopen(argv[2], "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0) {
        perror(argv[2]);
        return 2;
    }
    rewind(file);

    if ((st = apm_http_request_create(argv[1], &request)) != APM_OK)
        return print_failure("create", st);
    apm_http_request_set_method(request, "POST");
    apm_http_request_set_header_property(request, "Content-Type", "application/octet-stream");
    apm_http_request_set_content_length(request, size);
    if (argc > 3 && (st = apm_http_request_set_trusted_ca_file(request, argv[3])) != APM_OK)
        return print_failure("trusted CA file", st);

    /* BeginGetRequestStream connects, authenticates (TLS) and sends the head; End waits for it. */
    if ((st = apm_http_request_begin_get_request_stream(request, NULL, NULL, &result)) != APM_OK)
        return print_failure("BeginGetRequestStream", st);
    if ((st = apm_http_request_end_get_request_stream(request, result, &stream, &context)) != APM_OK)
        return print_failure("EndGetRequestStream", st);

    while ((n = fread(buf, 1, sizeof buf, file)) > 0)
        if ((st = apm_stream_write(stream, buf, sizeof buf, 0, n)) != APM_OK)
            return print_failure("Write", st);
    fclose(file);
    if ((st = apm_stream_close(stream)) != APM_OK) /* fails if fewer bytes than ContentLength */
        return print_failure("Close", st);
    printf("posted %ld bytes to %s\n", size, argv[1]);
    print_hex("tls-server-end-point", context, APM_CHANNEL_BINDING_KIND_ENDPOINT);
    print_hex("tls-unique", context, APM_CHANNEL_BINDING_KIND_UNIQUE);
    apm_transport_context_close(context);

    if ((st = apm_http_request_begin_get_response(request, NULL, NULL, &result)) != APM_OK)
        return print_failure("BeginGetResponse", st);
    if ((st = apm_http_request_end_get_response(request, result, &response)) != APM_OK)
        return print_failure("EndGetResponse", st);
    apm_http_response_get_status_code(response, &code);
    apm_http_response_get_status_description(response, text, sizeof text, &text_len);
    printf("status: %d %s\n", code, text);
    apm_http_response_get_content_type(response, text, sizeof text, &text_len);
    printf("content-type: %s\n", text);
    apm_http_response_get_response_stream(response, &body);
    printf("body: ");
    while (apm_stream_read(body, buf, sizeof buf, 0, sizeof buf, &n) == APM_OK && n > 0)
        fwrite(buf, 1, n, stdout);
    printf("\n");
    apm_stream_close(body);
    apm_http_response_close(response);
    apm_http_request_close(request);
    apm_runtime_shutdown();
    return code == 200 ? 0 : 1;
}
