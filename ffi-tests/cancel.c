/*
 * ffi-tests/cancel.c - apm_async_result_cancel: a pending operation completes with
 * OperationAborted (995) and its callback runs once; a cancelled read has consumed no byte; a
 * completed result is left alone; what cannot be cancelled says so.
 */
#include "harness.h"

#include <unistd.h>

TEST(cancel_a_pending_receive_completes_it_aborted_and_consumes_nothing)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[16];
    size_t n = 0;
    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(apm_async_result_cancel(r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_socket_end_receive(c, r, &n), APM_E_SOCKET);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_OPERATION_ABORTED);
    /* The bytes sent now go to the next receive: the cancelled one took none. */
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"abc", 3, 0, 3, &n));
    ASSERT_OK(apm_socket_receive(c, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
}

TEST(cancel_the_first_of_two_queued_receives_leaves_the_second)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r1 = NULL, *r2 = NULL;
    hx_cb cb1, cb2;
    uint8_t b1[16], b2[16];
    size_t n = 0;
    hx_cb_init(&cb1);
    hx_cb_init(&cb2);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, b1, sizeof b1, 0, sizeof b1, hx_cb_record, &cb1, &r1));
    ASSERT_OK(apm_socket_begin_receive(c, b2, sizeof b2, 0, sizeof b2, hx_cb_record, &cb2, &r2));
    ASSERT_OK(apm_async_result_cancel(r1));
    ASSERT_EVENT(&cb1.done, 1);
    ASSERT_EQ(HX_CB_CALLS(&cb2), 0);
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"xyz", 3, 0, 3, &n));
    ASSERT_EVENT(&cb2.done, 1);
    ASSERT_STATUS(apm_socket_end_receive(c, r1, &n), APM_E_SOCKET);
    ASSERT_OK(apm_socket_end_receive(c, r2, &n));
    ASSERT_UEQ(n, 3);
    ASSERT_MEM_EQ(b2, "xyz", 3);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb1);
    hx_cb_destroy(&cb2);
}

TEST(cancel_a_completed_result_does_nothing)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    size_t n = 0;
    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"ok", 2, 0, 2, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_OK(apm_async_result_cancel(r));
    ASSERT_OK(apm_socket_end_send(c, r, &n));
    ASSERT_UEQ(n, 2);
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    /* An ended result is no longer a result. */
    ASSERT_STATUS(apm_async_result_cancel(r), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_async_result_cancel(NULL), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(cancel_a_network_stream_read_is_an_io_error_over_operation_aborted)
{
    apm_stream *a = NULL, *b = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[8];
    size_t n = 0;
    hx_cb_init(&cb);
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_stream_begin_read(a, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_OK(apm_async_result_cancel(r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_stream_end_read(a, r, &n), APM_E_IO);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_OPERATION_ABORTED);
    ASSERT_OK(apm_stream_write(b, (const uint8_t *)"next", 4, 0, 4));
    ASSERT_OK(apm_stream_read(a, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 4);
    ASSERT_MEM_EQ(buf, "next", 4);
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

/* A custom stream whose reads never complete until told to. */
typedef struct held_read {
    apm_custom_complete_fn complete;
    uint64_t token;
} held_read;

static apm_status hold_read(void *ctx, uint8_t *buffer, size_t count, apm_custom_complete_fn complete, uint64_t token)
{
    held_read *h = ctx;
    (void)buffer;
    (void)count;
    h->complete = complete;
    h->token = token;
    return APM_OK;
}

static apm_status no_write(void *ctx, const uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                           uint64_t token)
{
    (void)ctx;
    (void)buffer;
    (void)count;
    (void)complete;
    (void)token;
    return APM_E_NOT_SUPPORTED;
}

TEST(cancel_a_custom_stream_read_is_not_supported_and_it_goes_on)
{
    held_read h = {NULL, 0};
    apm_stream_vtable v = {hold_read, no_write, NULL};
    apm_stream *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[4];
    size_t n = 0;
    hx_cb_init(&cb);
    ASSERT_OK(apm_stream_create_custom(&v, &h, &s));
    ASSERT_OK(apm_stream_begin_read(s, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_STATUS(apm_async_result_cancel(r), APM_E_NOT_SUPPORTED);
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(h.complete(h.token, APM_OK, 2));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_OK(apm_stream_end_read(s, r, &n));
    ASSERT_UEQ(n, 2);
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}
