/*
 * ffi-tests/errors.c - status codes and names, the last-error record, the
 * version, handle checking (NULL, stale, wrong type, garbage) and the runtime
 * configuration rules.
 */
#include "harness.h"

#include <unistd.h>

TEST(status_values_match_spec)
{
    ASSERT_EQ(APM_OK, 0);
    ASSERT_EQ(APM_E_ARGUMENT_NULL, -1);
    ASSERT_EQ(APM_E_ARGUMENT_OUT_OF_RANGE, -2);
    ASSERT_EQ(APM_E_ARGUMENT, -3);
    ASSERT_EQ(APM_E_INVALID_OPERATION, -4);
    ASSERT_EQ(APM_E_NOT_SUPPORTED, -5);
    ASSERT_EQ(APM_E_OBJECT_DISPOSED, -6);
    ASSERT_EQ(APM_E_IO, -7);
    ASSERT_EQ(APM_E_SOCKET, -8);
    ASSERT_EQ(APM_E_AUTHENTICATION, -9);
    ASSERT_EQ(APM_E_INVALID_CREDENTIAL, -10);
    ASSERT_EQ(APM_E_PROTOCOL_VIOLATION, -11);
    ASSERT_EQ(APM_E_WEB, -12);
    ASSERT_EQ(APM_E_FILE_NOT_FOUND, -13);
    ASSERT_EQ(APM_E_DIRECTORY_NOT_FOUND, -14);
    ASSERT_EQ(APM_E_PLATFORM_NOT_SUPPORTED, -15);
    ASSERT_EQ(APM_E_TIMEOUT, -16);
    ASSERT_EQ(APM_E_OUT_OF_MEMORY, -17);
    ASSERT_EQ(APM_E_INTERNAL, -18);
    ASSERT_EQ(APM_E_UNAUTHORIZED_ACCESS, -19);
    ASSERT_EQ(APM_E_CRYPTOGRAPHIC, -20);
    ASSERT_EQ((int)sizeof(apm_status), 4);

    /* Enum values are .NET's numbers. */
    ASSERT_EQ(APM_ADDRESS_FAMILY_INTER_NETWORK, 2);
    ASSERT_EQ(APM_ADDRESS_FAMILY_INTER_NETWORK_V6, 23);
    ASSERT_EQ(APM_SOCKET_TYPE_STREAM, 1);
    ASSERT_EQ(APM_PROTOCOL_TYPE_TCP, 6);
    ASSERT_EQ(APM_SOCKET_SHUTDOWN_RECEIVE, 0);
    ASSERT_EQ(APM_SOCKET_SHUTDOWN_SEND, 1);
    ASSERT_EQ(APM_SOCKET_SHUTDOWN_BOTH, 2);
    ASSERT_EQ(APM_TRANSMIT_FILE_USE_DEFAULT_WORKER_THREAD, 0);
    ASSERT_EQ(APM_TRANSMIT_FILE_DISCONNECT, 1);
    ASSERT_EQ(APM_TRANSMIT_FILE_REUSE_SOCKET, 2);
    ASSERT_EQ(APM_TRANSMIT_FILE_WRITE_BEHIND, 4);
    ASSERT_EQ(APM_SOCKET_ERROR_SUCCESS, 0);
    ASSERT_EQ(APM_SOCKET_ERROR_CONNECTION_RESET, 10054);
    ASSERT_EQ(APM_SOCKET_ERROR_CONNECTION_REFUSED, 10061);
    ASSERT_EQ(APM_SOCKET_ERROR_SHUTDOWN, 10058);
    ASSERT_EQ(APM_SOCKET_ERROR_NOT_CONNECTED, 10057);
    ASSERT_EQ(APM_SOCKET_ERROR_OPERATION_ABORTED, 995);
    ASSERT_EQ(APM_SOCKET_ERROR_ADDRESS_ALREADY_IN_USE, 10048);
    ASSERT_EQ(APM_SOCKET_ERROR_IS_CONNECTED, 10056);
    ASSERT_EQ(APM_FILE_ACCESS_READ, 1);
    ASSERT_EQ(APM_FILE_ACCESS_WRITE, 2);
    ASSERT_EQ(APM_FILE_ACCESS_READ_WRITE, 3);
}

TEST(status_names)
{
    static const struct {
        apm_status st;
        const char *name;
    } table[] = {
        {APM_OK, "APM_OK"},
        {APM_E_ARGUMENT_NULL, "APM_E_ARGUMENT_NULL"},
        {APM_E_ARGUMENT_OUT_OF_RANGE, "APM_E_ARGUMENT_OUT_OF_RANGE"},
        {APM_E_ARGUMENT, "APM_E_ARGUMENT"},
        {APM_E_INVALID_OPERATION, "APM_E_INVALID_OPERATION"},
        {APM_E_NOT_SUPPORTED, "APM_E_NOT_SUPPORTED"},
        {APM_E_OBJECT_DISPOSED, "APM_E_OBJECT_DISPOSED"},
        {APM_E_IO, "APM_E_IO"},
        {APM_E_SOCKET, "APM_E_SOCKET"},
        {APM_E_AUTHENTICATION, "APM_E_AUTHENTICATION"},
        {APM_E_INVALID_CREDENTIAL, "APM_E_INVALID_CREDENTIAL"},
        {APM_E_PROTOCOL_VIOLATION, "APM_E_PROTOCOL_VIOLATION"},
        {APM_E_WEB, "APM_E_WEB"},
        {APM_E_FILE_NOT_FOUND, "APM_E_FILE_NOT_FOUND"},
        {APM_E_DIRECTORY_NOT_FOUND, "APM_E_DIRECTORY_NOT_FOUND"},
        {APM_E_PLATFORM_NOT_SUPPORTED, "APM_E_PLATFORM_NOT_SUPPORTED"},
        {APM_E_TIMEOUT, "APM_E_TIMEOUT"},
        {APM_E_OUT_OF_MEMORY, "APM_E_OUT_OF_MEMORY"},
        {APM_E_INTERNAL, "APM_E_INTERNAL"},
        {APM_E_UNAUTHORIZED_ACCESS, "APM_E_UNAUTHORIZED_ACCESS"},
        {APM_E_CRYPTOGRAPHIC, "APM_E_CRYPTOGRAPHIC"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        ASSERT_STR_EQ(apm_status_name(table[i].st), table[i].name);
    ASSERT_STR_EQ(apm_status_name(1), "APM_UNKNOWN");
    ASSERT_STR_EQ(apm_status_name(-20000), "APM_UNKNOWN");
    ASSERT_STR_EQ(apm_status_name(INT32_MIN), "APM_UNKNOWN");
    ASSERT_STR_EQ(apm_status_name(INT32_MAX), "APM_UNKNOWN");
    /* Static strings: the same pointer every time. */
    ASSERT_PTR_EQ(apm_status_name(APM_E_SOCKET), apm_status_name(APM_E_SOCKET));
}

TEST(version)
{
    char expect[64];
    const char *v = apm_version();
    ASSERT_NOT_NULL(v);
    snprintf(expect, sizeof expect, "%d.%d.%d", (int)APM_VERSION_MAJOR,
             (int)APM_VERSION_MINOR, (int)APM_VERSION_PATCH);
    /* The version string starts with MAJOR.MINOR.PATCH (a pre-release or
     * build suffix may follow). */
    ASSERT_STR_STARTS_WITH(v, expect);
    ASSERT(v[strlen(expect)] == '\0' || v[strlen(expect)] == '-' ||
           v[strlen(expect)] == '+');
    ASSERT_NE(apm_version_number(), 0);
    ASSERT_EQ(apm_version_number(), (uint32_t)APM_VERSION_NUMBER);
    ASSERT_EQ(APM_VERSION_NUMBER,
              (APM_VERSION_MAJOR << 16) | (APM_VERSION_MINOR << 8) | APM_VERSION_PATCH);
    ASSERT_PTR_EQ(apm_version(), v);
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(last_error_record_and_truncation)
{
    apm_socket *s = NULL;
    char buf[256];
    char small[4];
    size_t len = 0, len2 = 0;

    /* A failing call records the error: an unconnected socket cannot send a file. */
    s = hx_apm_tcp4();
    ASSERT_STATUS(apm_socket_send_file(s, NULL, (const uint8_t *)"x", 1, NULL, 0, 0),
                  APM_E_NOT_SUPPORTED);
    ASSERT_EQ(apm_last_error_status(), APM_E_NOT_SUPPORTED);
    ASSERT_EQ(apm_last_error_socket_error(), 0);
    ASSERT_EQ(apm_last_error_web_status(), 0);
    ASSERT_EQ(apm_last_error_http_status(), 0);

    ASSERT_OK(apm_last_error_message(buf, sizeof buf, &len));
    ASSERT_STR_EQ(buf, "The operation is not allowed on non-connected sockets.");
    ASSERT_UEQ(len, strlen(buf));

    /* Length query without a buffer. */
    len2 = 12345;
    ASSERT_OK(apm_last_error_message(NULL, 0, &len2));
    ASSERT_UEQ(len2, len);

    /* Truncation: always NUL-terminated, full length reported. */
    memset(small, 'Z', sizeof small);
    len2 = 0;
    ASSERT_OK(apm_last_error_message(small, sizeof small, &len2));
    ASSERT_UEQ(len2, len);
    ASSERT_EQ(small[3], '\0');
    ASSERT(memcmp(small, "The", 3) == 0);

    /* One byte: only the NUL. */
    small[0] = 'Z';
    ASSERT_OK(apm_last_error_message(small, 1, &len2));
    ASSERT_EQ(small[0], '\0');

    /* No inner error here: empty. */
    buf[0] = 'Z';
    len2 = 999;
    ASSERT_OK(apm_last_error_inner_message(buf, sizeof buf, &len2));
    ASSERT_UEQ(len2, 0);
    ASSERT_EQ(buf[0], '\0');

    /* Reading the record does not change it. */
    ASSERT_EQ(apm_last_error_status(), APM_E_NOT_SUPPORTED);

    /* Clearing empties the record. */
    ASSERT_OK(apm_last_error_clear());
    ASSERT_EQ(apm_last_error_status(), APM_OK);
    ASSERT_OK(apm_last_error_message(buf, sizeof buf, &len));
    ASSERT_UEQ(len, 0);
    ASSERT_STR_EQ(buf, "");
    /* A NULL buffer with a length is refused, without touching the record. */
    ASSERT_EQ(apm_last_error_message(NULL, 8, &len), APM_E_ARGUMENT_NULL);
    ASSERT_EQ(apm_last_error_status(), APM_OK);

    /* A later failure replaces it. */
    ASSERT_STATUS(apm_socket_listen(NULL, 1), APM_E_ARGUMENT_NULL);
    ASSERT_EQ(apm_last_error_status(), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_last_error_message(buf, sizeof buf, &len));
    ASSERT_GT(len, 0);

    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(last_error_socket_error_and_errno)
{
    apm_socket *s = hx_apm_tcp4();
    int port = hx_free_port();
    ASSERT_STATUS(apm_socket_connect(s, "127.0.0.1", port), APM_E_SOCKET);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_CONNECTION_REFUSED);
    ASSERT_EQ(apm_last_error_errno(), ECONNREFUSED);
    ASSERT_GT(strlen(hx_last_message()), 0);
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

static void *other_thread_error(void *arg)
{
    int32_t *out = (int32_t *)arg;
    /* Nothing failed on this thread yet. */
    out[0] = apm_last_error_status();
    /* Fail here with another status. */
    out[1] = apm_socket_listen(NULL, 1);
    out[2] = apm_last_error_status();
    return NULL;
}

TEST(last_error_is_per_thread)
{
    int32_t seen[3] = {-100, -100, -100};
    apm_socket *s = hx_apm_tcp4();
    ASSERT_STATUS(apm_socket_listen(NULL, 1), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_send_file(s, NULL, NULL, 0, NULL, 0, 0), APM_E_NOT_SUPPORTED);
    hx_thread_join(hx_thread_start(other_thread_error, seen));
    ASSERT_EQ(seen[0], APM_OK);
    ASSERT_EQ(seen[1], APM_E_ARGUMENT_NULL);
    ASSERT_EQ(seen[2], APM_E_ARGUMENT_NULL);
    /* This thread's record is untouched by the other thread. */
    ASSERT_EQ(apm_last_error_status(), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE("The operation is not allowed on non-connected sockets.");
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(null_handles_and_out_params)
{
    int32_t v = 0;
    void *p = NULL;
    apm_socket *s = NULL;
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;
    char addr[64];
    uint8_t buf[8] = {0};

    ASSERT_STATUS(apm_socket_bind(NULL, "127.0.0.1", 0), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_listen(NULL, 1), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_close(NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_get_connected(NULL, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_send(NULL, buf, 8, 0, 8, &n), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_begin_receive(NULL, buf, 8, 0, 8, NULL, NULL, &r),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_can_read(NULL, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_close(NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_begin_write(NULL, buf, 8, 0, 8, NULL, NULL, &r),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_async_result_is_completed(NULL, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_async_result_completed_synchronously(NULL, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_async_result_wait(NULL, 0, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_async_result_state(NULL, &p), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_network_stream_create(NULL, 0, &st), APM_E_ARGUMENT_NULL);

    /* NULL out-parameters. */
    ASSERT_STATUS(apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                    APM_PROTOCOL_TYPE_TCP, NULL),
                  APM_E_ARGUMENT_NULL);
    s = hx_apm_tcp4();
    ASSERT_STATUS(apm_socket_get_connected(s, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_get_no_delay(s, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_bind(s, NULL, 0), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_connect(s, NULL, 80), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_socket_bind(s, "127.0.0.1", 0));
    ASSERT_STATUS(apm_socket_get_local_endpoint(s, NULL, 64, &v), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_get_local_endpoint(s, addr, sizeof addr, NULL),
                  APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(stale_handles_object_disposed)
{
    apm_socket *s = hx_apm_tcp4();
    apm_socket *c = NULL, *srv = NULL;
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    int32_t v = 0;
    size_t n = 0;
    uint8_t buf[8] = {0};

    ASSERT_OK(apm_socket_close(s));
    ASSERT_STATUS(apm_socket_bind(s, "127.0.0.1", 0), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_get_connected(s, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_send(s, buf, 8, 0, 8, &n), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_begin_receive(s, buf, 8, 0, 8, NULL, NULL, &r),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_set_no_delay(s, 1), APM_E_OBJECT_DISPOSED);
    /* Close is idempotent on a closed handle. */
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_socket_close(s));

    hx_apm_pair(&c, &srv);
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    ASSERT_OK(apm_stream_close(st));
    v = -1;
    ASSERT_OK(apm_stream_can_read(st, &v)); /* false after Dispose, as in .NET */
    ASSERT_EQ(v, 0);
    ASSERT_STATUS(apm_stream_write(st, buf, 8, 0, 8), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_stream_begin_read(st, buf, 8, 0, 8, NULL, NULL, &r),
                  APM_E_OBJECT_DISPOSED);
    /* The stream owned the socket: closed with it. */
    ASSERT_STATUS(apm_socket_get_connected(c, &v), APM_E_OBJECT_DISPOSED);

    /* A stale handle stays stale after new handles were created. */
    s = hx_apm_tcp4();
    ASSERT_STATUS(apm_stream_write(st, buf, 8, 0, 8), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_socket_close(srv));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(wrong_type_and_garbage_handles)
{
    apm_socket *c = NULL, *srv = NULL;
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    int32_t v = 0;
    void *p = NULL;
    size_t n = 0;
    uint8_t buf[8] = {0};

    hx_apm_pair(&c, &srv);
    ASSERT_OK(apm_network_stream_create(c, 0, &st));
    ASSERT_OK(apm_socket_begin_receive(srv, buf, 8, 0, 8, NULL, NULL, &r));

    /* A stream where a socket is expected, and the other way round. */
    ASSERT_STATUS(apm_socket_get_connected((apm_socket *)(void *)st, &v), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_close((apm_socket *)(void *)st), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_stream_can_read((apm_stream *)(void *)c, &v), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_stream_close((apm_stream *)(void *)c), APM_E_ARGUMENT);
    /* A result where a socket/stream is expected, and the other way round. */
    ASSERT_STATUS(apm_socket_get_connected((apm_socket *)(void *)r, &v), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_stream_can_write((apm_stream *)(void *)r, &v), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_async_result_is_completed((apm_async_result *)(void *)c, &v),
                  APM_E_ARGUMENT);
    ASSERT_STATUS(apm_async_result_state((apm_async_result *)(void *)st, &p),
                  APM_E_ARGUMENT);

    /* Garbage values. */
    {
        /* Including values that look like handles of each kind but were never
         * issued (a huge index). */
        static const uintptr_t garbage[] = {1,
                                            2,
                                            0x10,
                                            0xdeadbeef,
                                            0x7fffffff,
                                            (uintptr_t)0xfffffffffffff000ull,
                                            (uintptr_t)0x01fffff000000001ull,
                                            (uintptr_t)0x02fffff000000001ull,
                                            (uintptr_t)0x03fffff000000001ull};
        for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
            ASSERT_STATUS(apm_socket_get_connected((apm_socket *)garbage[i], &v),
                          APM_E_ARGUMENT);
            ASSERT_STATUS(apm_socket_send((apm_socket *)garbage[i], buf, 8, 0, 8, &n),
                          APM_E_ARGUMENT);
            ASSERT_STATUS(apm_stream_can_read((apm_stream *)garbage[i], &v),
                          APM_E_ARGUMENT);
            ASSERT_STATUS(apm_async_result_is_completed((apm_async_result *)garbage[i], &v),
                          APM_E_ARGUMENT);
        }
    }

    /* Everything still works after all of that. */
    ASSERT_OK(apm_async_result_is_completed(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_socket_send(c, (const uint8_t *)"hi", 2, 0, 2, &n));
    ASSERT_OK(apm_socket_end_receive(srv, r, &n));
    ASSERT_UEQ(n, 2);
    ASSERT_MEM_EQ(buf, "hi", 2);

    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(srv));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(runtime_configure_out_of_range)
{
    ASSERT_STATUS(apm_runtime_configure(-1, 0), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_runtime_configure(65, 0), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_runtime_configure(2, -1), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_runtime_configure(INT32_MIN, 0), APM_E_ARGUMENT_OUT_OF_RANGE);
    /* Rejected calls did not start the runtime: a valid one is still accepted. */
    ASSERT_OK(apm_runtime_configure(1, 0));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(runtime_configure_bounds_accepted)
{
    ASSERT_OK(apm_runtime_configure(64, 0));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(runtime_configure_after_first_use)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;
    uint8_t buf[4];
    ASSERT_OK(apm_runtime_configure(2, 10));
    hx_apm_pair(&c, &s);
    /* Use the engine. */
    ASSERT_OK(apm_socket_begin_receive(s, buf, 4, 0, 4, NULL, NULL, &r));
    ASSERT_OK(apm_socket_send(c, (const uint8_t *)"abcd", 4, 0, 4, &n));
    ASSERT_OK(apm_socket_end_receive(s, r, &n));
    ASSERT_GT(n, 0);
    ASSERT_STATUS(apm_runtime_configure(1, 0), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_runtime_configure(0, 0), APM_E_INVALID_OPERATION);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(runtime_restarts_after_shutdown)
{
    for (int round = 0; round < 3; round++) {
        apm_socket *c = NULL, *s = NULL;
        apm_async_result *r = NULL;
        hx_cb cb;
        size_t n = 0;
        uint8_t buf[4];
        hx_cb_init(&cb);
        hx_apm_pair(&c, &s);
        ASSERT_OK(apm_socket_begin_receive(s, buf, 4, 0, 4, hx_cb_record, &cb, &r));
        ASSERT_OK(apm_socket_send(c, (const uint8_t *)"ping", 4, 0, 4, &n));
        ASSERT_EVENT(&cb.done, 1);
        ASSERT_OK(apm_socket_end_receive(s, r, &n));
        ASSERT_UEQ(n, 4);
        ASSERT_OK(apm_socket_close(c));
        ASSERT_OK(apm_socket_close(s));
        ASSERT_OK(apm_runtime_shutdown());
        ASSERT_EQ(HX_CB_CALLS(&cb), 1);
        hx_cb_destroy(&cb);
    }
    /* Shutdown with nothing running is fine too. */
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(runtime_threads_env)
{
    /* APMNET_THREADS picks the default thread count; the runtime works with it. */
    apm_socket *c = NULL, *s = NULL;
    size_t n = 0;
    uint8_t buf[4];
    setenv("APMNET_THREADS", "3", 1);
    ASSERT_OK(apm_runtime_configure(0, 0));
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_send(c, (const uint8_t *)"ping", 4, 0, 4, &n));
    ASSERT_OK(apm_socket_receive(s, buf, 4, 0, 4, &n));
    ASSERT_GT(n, 0);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

/* .NET Framework 4 names the count of Socket.Send/Receive and of NetworkStream's Read/Write
 * (and their Begin forms) `size`; Stream's (an SslStream's, a custom stream's) is `count`. */
static apm_status refuse_io(void *ctx, uint8_t *buffer, size_t count, apm_custom_complete_fn complete, uint64_t token)
{
    (void)ctx;
    (void)buffer;
    (void)count;
    (void)complete;
    (void)token;
    return APM_E_NOT_SUPPORTED;
}

static apm_status refuse_write_io(void *ctx, const uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                                  uint64_t token)
{
    return refuse_io(ctx, (uint8_t *)(uintptr_t)buffer, count, complete, token);
}

TEST(out_of_range_counts_name_the_dotnet_parameter)
{
    static const char size_msg[] = "Specified argument was out of the range of valid values. (Parameter 'size')";
    static const char count_msg[] = "Specified argument was out of the range of valid values. (Parameter 'count')";
    apm_socket *c = NULL, *s = NULL;
    apm_stream *ns = NULL, *custom = NULL;
    apm_async_result *r = NULL;
    apm_stream_vtable v = {refuse_io, refuse_write_io, NULL};
    uint8_t buf[4] = {0};
    size_t n = 0;
    hx_apm_pair(&c, &s);
    ASSERT_STATUS(apm_socket_send(c, buf, sizeof buf, 1, 4, &n), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE(size_msg);
    ASSERT_STATUS(apm_socket_begin_receive(c, buf, sizeof buf, 1, 4, NULL, NULL, &r), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE(size_msg);
    ASSERT_OK(apm_network_stream_create(c, 0, &ns));
    ASSERT_STATUS(apm_stream_begin_write(ns, buf, sizeof buf, 2, 3, NULL, NULL, &r), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE(size_msg);
    ASSERT_STATUS(apm_stream_read(ns, buf, sizeof buf, 0, 5, &n), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE(size_msg);
    ASSERT_OK(apm_stream_create_custom(&v, NULL, &custom));
    ASSERT_STATUS(apm_stream_write(custom, buf, sizeof buf, 0, 5), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE(count_msg);
    ASSERT_OK(apm_stream_close(custom));
    ASSERT_OK(apm_stream_close(ns));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

/* (NULL object, NULL out-parameter): every export checks the object first, as .NET checks `this`
 * before its arguments, so the error names the object. A sample from each file of src/ffi. */
#define ASSERT_NULL_NAMES(expr, param)                                                             \
    do {                                                                                           \
        ASSERT_STATUS((expr), APM_E_ARGUMENT_NULL);                                                \
        ASSERT_LAST_MESSAGE("Value cannot be null. (Parameter '" param "')");                      \
    } while (0)

TEST(argument_checks_name_the_object_before_the_out_parameter)
{
    /* socket.rs */
    ASSERT_NULL_NAMES(apm_socket_accept(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_end_accept(NULL, NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_end_send(NULL, NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_end_receive(NULL, NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_send(NULL, NULL, 0, 0, 0, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_connected(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_available(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_no_delay(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_send_buffer_size(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_receive_timeout(NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_linger(NULL, NULL, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_get_local_endpoint(NULL, NULL, 8, NULL), "socket");
    ASSERT_NULL_NAMES(apm_socket_begin_send_file(NULL, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, NULL), "socket");
    /* network_stream.rs: a constructor names the object it wraps. */
    ASSERT_NULL_NAMES(apm_network_stream_create(NULL, 0, NULL), "socket");
    ASSERT_NULL_NAMES(apm_network_stream_create_with_access(NULL, 99, 0, NULL), "socket");
    /* stream.rs */
    ASSERT_NULL_NAMES(apm_stream_end_read(NULL, NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_stream_read(NULL, NULL, 0, 0, 0, NULL), "stream");
    ASSERT_NULL_NAMES(apm_stream_begin_write(NULL, NULL, 0, 0, 0, NULL, NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_stream_can_read(NULL, NULL), "stream");
    /* ssl_stream.rs */
    ASSERT_NULL_NAMES(apm_ssl_stream_create(NULL, 0, NULL), "innerStream");
    ASSERT_NULL_NAMES(apm_ssl_stream_get_transport_context(NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_ssl_stream_get_remote_certificate(NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_ssl_stream_is_resumed(NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_ssl_stream_get_cipher_suite(NULL, NULL), "stream");
    /* transport_context.rs */
    ASSERT_NULL_NAMES(apm_transport_context_get_channel_binding(NULL, APM_CHANNEL_BINDING_KIND_UNIQUE, NULL, 8, NULL),
                      "context");
    /* negotiate_stream.rs */
    ASSERT_NULL_NAMES(apm_negotiate_stream_create(NULL, 0, NULL), "innerStream");
    ASSERT_NULL_NAMES(apm_negotiate_stream_get_impersonation_level(NULL, NULL), "stream");
    ASSERT_NULL_NAMES(apm_negotiate_stream_is_server(NULL, NULL), "stream");
    /* http_request.rs, http_response.rs */
    ASSERT_NULL_NAMES(apm_http_request_get_protocol_version(NULL, NULL, NULL), "request");
    ASSERT_NULL_NAMES(apm_http_request_get_request_stream(NULL, NULL, NULL), "request");
    ASSERT_NULL_NAMES(apm_http_request_end_get_request_stream(NULL, NULL, NULL, NULL), "request");
    ASSERT_NULL_NAMES(apm_http_request_get_response(NULL, NULL), "request");
    ASSERT_NULL_NAMES(apm_http_request_end_get_response(NULL, NULL, NULL), "request");
    ASSERT_NULL_NAMES(apm_http_response_get_protocol_version(NULL, NULL, NULL), "response");
    ASSERT_NULL_NAMES(apm_http_response_get_response_stream(NULL, NULL), "response");
    /* async_result.rs */
    ASSERT_NULL_NAMES(apm_async_result_wait(NULL, 0, NULL), "asyncResult");
    ASSERT_NULL_NAMES(apm_async_result_is_completed(NULL, NULL), "asyncResult");
    ASSERT_NULL_NAMES(apm_async_result_completed_synchronously(NULL, NULL), "asyncResult");
    ASSERT_NULL_NAMES(apm_async_result_state(NULL, NULL), "asyncResult");
    /* negotiate_authentication.rs */
    ASSERT_NULL_NAMES(apm_negotiate_authentication_get_protection_level(NULL, NULL), "authentication");
    ASSERT_NULL_NAMES(apm_negotiate_authentication_is_authenticated(NULL, NULL), "authentication");
    /* certificate.rs, credential.rs */
    ASSERT_NULL_NAMES(apm_certificate_get_validity(NULL, NULL, NULL), "certificate");
    ASSERT_NULL_NAMES(apm_certificate_has_private_key(NULL, NULL), "certificate");
    ASSERT_NULL_NAMES(apm_credential_get_user_name(NULL, NULL, 8, NULL), "credential");
}

/* A closed object with a NULL out-parameter: the object's check comes first (ObjectDisposed), but
 * for End, which must release the result of a closed object, the out-parameter is checked before
 * anything is released, and the result stays for a second End. */
TEST(closed_objects_are_checked_before_the_out_parameter)
{
    apm_socket *c = NULL, *s = NULL, *closed = hx_apm_tcp4();
    apm_stream *ns = NULL, *neg = NULL;
    apm_async_result *r = NULL;
    uint8_t buf[8] = {0};
    size_t n = SIZE_MAX;
    int32_t v = 0;

    ASSERT_OK(apm_socket_close(closed));
    ASSERT_STATUS(apm_socket_get_available(closed, NULL), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_get_send_timeout(closed, NULL), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_get_linger(closed, NULL, NULL), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_accept(closed, NULL), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_network_stream_create(closed, 0, NULL), APM_E_OBJECT_DISPOSED);

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_network_stream_create(c, 0, &ns));
    ASSERT_OK(apm_negotiate_stream_create(ns, 1, &neg));
    ASSERT_OK(apm_stream_close(neg));
    ASSERT_STATUS(apm_negotiate_stream_get_impersonation_level(neg, NULL), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_ssl_stream_create(neg, 1, NULL), APM_E_OBJECT_DISPOSED);

    ASSERT_OK(apm_socket_begin_receive(s, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_NULL_NAMES(apm_socket_end_receive(s, r, NULL), "received");
    ASSERT_OK(apm_async_result_is_completed(r, &v)); /* still there */
    ASSERT_STATUS(apm_socket_end_receive(s, r, &n), APM_E_OBJECT_DISPOSED);
    ASSERT_UEQ(n, SIZE_MAX);
    /* Released by that End. */
    ASSERT_STATUS(apm_async_result_is_completed(r, &v), APM_E_ARGUMENT);

    ASSERT_OK(apm_stream_close(ns));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
}

/* One rule for every output buffer: text is truncated to buffer_len - 1 bytes and NUL-terminated,
 * bytes are copied up to buffer_len with no NUL, and the optional length gets the full length; a
 * NULL buffer with a zero length asks for the length alone; a short buffer is never an error.
 * A sample from each file that fills buffers. */
TEST(output_buffers_truncate_and_report_the_full_length)
{
    apm_socket *l = hx_apm_tcp4();
    apm_certificate *cert = NULL;
    apm_credential *cred = NULL;
    apm_negotiate_authentication *a = NULL;
    char text[64], small[4];
    uint8_t der[2048], few[3];
    size_t len = 0, full = 0;
    int32_t port = 0, lport = 0;

    /* socket.rs: the endpoint's address (no length out-parameter; 46 bytes always suffice). */
    ASSERT_OK(apm_socket_bind(l, "127.0.0.1", 0));
    ASSERT_OK(apm_socket_get_local_endpoint(l, text, sizeof text, &lport));
    ASSERT_STR_EQ(text, "127.0.0.1");
    memset(small, 'x', sizeof small);
    ASSERT_OK(apm_socket_get_local_endpoint(l, small, sizeof small, &port));
    ASSERT_STR_EQ(small, "127");
    ASSERT_EQ(port, lport);
    memset(small, 'x', sizeof small);
    ASSERT_OK(apm_socket_get_local_endpoint(l, small, 1, &port));
    ASSERT_STR_EQ(small, "");
    port = 0;
    ASSERT_OK(apm_socket_get_local_endpoint(l, NULL, 0, &port));
    ASSERT_EQ(port, lport);
    ASSERT_NULL_NAMES(apm_socket_get_local_endpoint(l, NULL, 4, &port), "address");

    /* credential.rs: text. */
    ASSERT_OK(apm_credential_create("someone", "secret", "REALM", &cred));
    ASSERT_OK(apm_credential_get_user_name(cred, NULL, 0, &full));
    ASSERT_UEQ(full, strlen("someone"));
    memset(small, 'x', sizeof small);
    ASSERT_OK(apm_credential_get_user_name(cred, small, sizeof small, &len));
    ASSERT_STR_EQ(small, "som");
    ASSERT_UEQ(len, full);
    ASSERT_NULL_NAMES(apm_credential_get_user_name(cred, NULL, 4, &len), "buffer");

    /* certificate.rs: text, then bytes (no NUL: the last byte copied is data). */
    ASSERT_OK(apm_certificate_load_pem((const uint8_t *)hx_test_cert_pem, strlen(hx_test_cert_pem), NULL, 0, &cert));
    ASSERT_OK(apm_certificate_get_subject(cert, text, sizeof text, &full));
    memset(small, 'x', sizeof small);
    ASSERT_OK(apm_certificate_get_subject(cert, small, sizeof small, &len));
    ASSERT_UEQ(len, full);
    ASSERT_UEQ(strlen(small), 3);
    ASSERT_MEM_EQ(small, text, 3);
    ASSERT_OK(apm_certificate_get_raw_data(cert, NULL, 0, &full));
    ASSERT_GT(full, sizeof few);
    ASSERT_LE(full, sizeof der);
    ASSERT_OK(apm_certificate_get_raw_data(cert, der, sizeof der, &len));
    ASSERT_UEQ(len, full);
    memset(few, 0xAA, sizeof few);
    ASSERT_OK(apm_certificate_get_raw_data(cert, few, sizeof few, &len));
    ASSERT_UEQ(len, full);
    ASSERT_MEM_EQ(few, der, sizeof few);

    /* negotiate_authentication.rs: text. */
    ASSERT_OK(apm_negotiate_authentication_create_client(NULL, NULL, NULL, NULL, 0, APM_PROTECTION_LEVEL_NONE, 0,
                                                         APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, &a));
    memset(small, 'x', sizeof small);
    ASSERT_OK(apm_negotiate_authentication_get_package(a, small, sizeof small, &len));
    ASSERT_STR_EQ(small, "Neg");
    ASSERT_UEQ(len, strlen("Negotiate"));

    ASSERT_OK(apm_negotiate_authentication_close(a));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_credential_close(cred));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
}
