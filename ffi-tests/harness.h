/*
 * ffi-tests/harness.h - the C test harness for apmnet's C API.
 *
 * Every test file includes this header first. It provides:
 *   - TEST(name) / SLOW_TEST(name) registration (a constructor per test);
 *   - assertion macros that print file:line, both values and, for a failed
 *     status, the library's last error record;
 *   - a runner (harness.c's main): `binary --list` lists the tests,
 *     `binary` runs all of them, each forked into its own process with a
 *     timeout, and `binary NAME...` runs the named tests in this process;
 *   - helpers: events (wait for a flag with a timeout), plain POSIX sockets on
 *     127.0.0.1, connected apm socket/stream pairs, Python peers, temporary
 *     files, pattern data and SHA-256.
 *
 * Environment:
 *   APMNET_TEST_TIMEOUT  seconds per test (default 60; 0 = none)
 *   APMNET_WAIT_MS       how long a helper waits for an event (default 30000)
 *   APMNET_SKIP_SLOW=1   skip SLOW_TEST tests (the 64 MiB / 4 GiB transfers)
 *   APMNET_FFI_DIR       directory holding peers/ (default "ffi-tests")
 *   APMNET_PYTHON        Python interpreter for peers (default "python3")
 *   APMNET_TEST_TMPDIR   directory for temporary files (default $TMPDIR, /tmp)
 *
 * Exit codes of a test process: 0 passed, 1 failed, 77 skipped.
 */
#ifndef APMNET_FFI_HARNESS_H
#define APMNET_FFI_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "apmnet.h"

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

typedef void (*hx_test_fn)(void);

#define HX_FLAG_SLOW 1

void hx_register(const char *name, hx_test_fn fn, int flags, const char *file);

#define HX_TEST_(name, flags)                                                  \
    static void hx_test_##name(void);                                          \
    __attribute__((constructor)) static void hx_register_##name(void)          \
    {                                                                          \
        hx_register(#name, hx_test_##name, (flags), __FILE__);                 \
    }                                                                          \
    static void hx_test_##name(void)

/* A test: `TEST(name) { ... }`. */
#define TEST(name) HX_TEST_(name, 0)
/* A test that moves gigabytes: skipped with APMNET_SKIP_SLOW=1. */
#define SLOW_TEST(name) HX_TEST_(name, HX_FLAG_SLOW)

/* ------------------------------------------------------------------ */
/* Failing                                                             */
/* ------------------------------------------------------------------ */

/* Print "file:line: message", clean up peers and temporary files, and end
 * the test process with status 1. Callable from any thread. */
_Noreturn void hx_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, after printing the library's last error record of this thread. */
_Noreturn void hx_fail_status(const char *file, int line, const char *expr,
                              apm_status got, apm_status expected);

/* End the test as skipped (exit 77). */
_Noreturn void hx_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last error message of this thread (a thread-local copy). */
const char *hx_last_message(void);
/* A printable status name that also handles values the library does not know. */
const char *hx_status_name(apm_status st);

#define ASSERT(cond)                                                           \
    do {                                                                       \
        if (!(cond))                                                           \
            hx_fail(__FILE__, __LINE__, "ASSERT(%s) failed", #cond);           \
    } while (0)

#define HX_CMP_(a, op, b)                                                      \
    do {                                                                       \
        long long hx_a_ = (long long)(a);                                      \
        long long hx_b_ = (long long)(b);                                      \
        if (!(hx_a_ op hx_b_))                                                 \
            hx_fail(__FILE__, __LINE__, "%s %s %s failed: %lld vs %lld", #a,   \
                    #op, #b, hx_a_, hx_b_);                                    \
    } while (0)

#define ASSERT_EQ(a, b) HX_CMP_(a, ==, b)
#define ASSERT_NE(a, b) HX_CMP_(a, !=, b)
#define ASSERT_LT(a, b) HX_CMP_(a, <, b)
#define ASSERT_LE(a, b) HX_CMP_(a, <=, b)
#define ASSERT_GT(a, b) HX_CMP_(a, >, b)
#define ASSERT_GE(a, b) HX_CMP_(a, >=, b)

/* Unsigned 64-bit comparison (sizes, byte counts). */
#define ASSERT_UEQ(a, b)                                                       \
    do {                                                                       \
        unsigned long long hx_a_ = (unsigned long long)(a);                    \
        unsigned long long hx_b_ = (unsigned long long)(b);                    \
        if (hx_a_ != hx_b_)                                                    \
            hx_fail(__FILE__, __LINE__, "%s == %s failed: %llu vs %llu", #a,   \
                    #b, hx_a_, hx_b_);                                         \
    } while (0)

#define ASSERT_PTR_EQ(a, b)                                                    \
    do {                                                                       \
        const void *hx_a_ = (const void *)(a);                                 \
        const void *hx_b_ = (const void *)(b);                                 \
        if (hx_a_ != hx_b_)                                                    \
            hx_fail(__FILE__, __LINE__, "%s == %s failed: %p vs %p", #a, #b,   \
                    hx_a_, hx_b_);                                             \
    } while (0)

#define ASSERT_NOT_NULL(p)                                                     \
    do {                                                                       \
        if ((p) == NULL)                                                       \
            hx_fail(__FILE__, __LINE__, "%s is NULL", #p);                     \
    } while (0)

#define ASSERT_NULL(p)                                                         \
    do {                                                                       \
        const void *hx_p_ = (const void *)(p);                                 \
        if (hx_p_ != NULL)                                                     \
            hx_fail(__FILE__, __LINE__, "%s is %p, expected NULL", #p, hx_p_); \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
    do {                                                                       \
        const char *hx_a_ = (a);                                               \
        const char *hx_b_ = (b);                                               \
        if (hx_a_ == NULL || hx_b_ == NULL || strcmp(hx_a_, hx_b_) != 0)       \
            hx_fail(__FILE__, __LINE__, "%s == %s failed: \"%s\" vs \"%s\"",   \
                    #a, #b, hx_a_ ? hx_a_ : "(null)", hx_b_ ? hx_b_ : "(null)"); \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                       \
    do {                                                                       \
        const char *hx_h_ = (hay);                                             \
        const char *hx_n_ = (needle);                                          \
        if (hx_h_ == NULL || strstr(hx_h_, hx_n_) == NULL)                     \
            hx_fail(__FILE__, __LINE__, "%s does not contain \"%s\": \"%s\"",  \
                    #hay, hx_n_, hx_h_ ? hx_h_ : "(null)");                    \
    } while (0)

#define ASSERT_STR_STARTS_WITH(s, prefix)                                      \
    do {                                                                       \
        const char *hx_s_ = (s);                                               \
        const char *hx_p_ = (prefix);                                          \
        if (hx_s_ == NULL || strncmp(hx_s_, hx_p_, strlen(hx_p_)) != 0)        \
            hx_fail(__FILE__, __LINE__, "%s does not start with \"%s\": \"%s\"", \
                    #s, hx_p_, hx_s_ ? hx_s_ : "(null)");                      \
    } while (0)

/* Compare n bytes; reports the first differing offset. */
#define ASSERT_MEM_EQ(a, b, n)                                                 \
    do {                                                                       \
        size_t hx_off_ = hx_mem_diff((a), (b), (n));                           \
        if (hx_off_ != (size_t)(n))                                            \
            hx_fail(__FILE__, __LINE__,                                        \
                    "%s and %s differ at offset %zu (0x%02x vs 0x%02x)", #a,   \
                    #b, hx_off_, ((const uint8_t *)(a))[hx_off_],              \
                    ((const uint8_t *)(b))[hx_off_]);                          \
    } while (0)

/* A call that must succeed; on failure prints the status name and the last
 * error record. */
#define ASSERT_OK(expr)                                                        \
    do {                                                                       \
        apm_status hx_st_ = (expr);                                            \
        if (hx_st_ != APM_OK)                                                  \
            hx_fail_status(__FILE__, __LINE__, #expr, hx_st_, APM_OK);         \
    } while (0)

/* A call that must fail with exactly `expected` (and record it as the last
 * error of this thread). */
#define ASSERT_STATUS(expr, expected)                                          \
    do {                                                                       \
        apm_status hx_st_ = (expr);                                            \
        apm_status hx_ex_ = (expected);                                        \
        if (hx_st_ != hx_ex_)                                                  \
            hx_fail_status(__FILE__, __LINE__, #expr, hx_st_, hx_ex_);         \
        if (hx_ex_ != APM_OK && apm_last_error_status() != hx_ex_)             \
            hx_fail(__FILE__, __LINE__,                                        \
                    "%s returned %s but apm_last_error_status() is %s", #expr, \
                    hx_status_name(hx_ex_),                                    \
                    hx_status_name(apm_last_error_status()));                  \
    } while (0)

/* The last error message of this thread equals / contains a text. */
#define ASSERT_LAST_MESSAGE(text) ASSERT_STR_EQ(hx_last_message(), (text))
#define ASSERT_LAST_MESSAGE_CONTAINS(text)                                     \
    ASSERT_STR_CONTAINS(hx_last_message(), (text))

/* ------------------------------------------------------------------ */
/* Time, waiting                                                       */
/* ------------------------------------------------------------------ */

int64_t hx_now_ms(void);
void hx_sleep_ms(int ms);
/* How long helpers wait for something that must happen (APMNET_WAIT_MS). */
int hx_wait_ms(void);

/* Poll `cond` every millisecond; fail the test if it stays false for
 * hx_wait_ms(). Not a timing assertion: only a guard against hanging. */
#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        int64_t hx_deadline_ = hx_now_ms() + hx_wait_ms();                     \
        while (!(cond)) {                                                      \
            if (hx_now_ms() > hx_deadline_)                                    \
                hx_fail(__FILE__, __LINE__, "timed out waiting for %s", #cond); \
            hx_sleep_ms(1);                                                    \
        }                                                                      \
    } while (0)

/* A counting event: signal() adds one, wait() waits until the count reaches
 * a target. */
typedef struct hx_event {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long count;
} hx_event;

void hx_event_init(hx_event *ev);
void hx_event_destroy(hx_event *ev);
void hx_event_signal(hx_event *ev);
long hx_event_count(hx_event *ev);
/* 1 when the count reached `target` within timeout_ms (-1 = forever), else 0. */
int hx_event_wait(hx_event *ev, long target, int timeout_ms);

#define ASSERT_EVENT(ev, target)                                               \
    do {                                                                       \
        if (!hx_event_wait((ev), (target), hx_wait_ms()))                      \
            hx_fail(__FILE__, __LINE__,                                        \
                    "timed out waiting for %s to reach %ld (it is %ld)", #ev,  \
                    (long)(target), hx_event_count(ev));                       \
    } while (0)

/* A completion recorder for apm callbacks: pass hx_cb_record as the callback
 * and an hx_cb * as the state. */
typedef struct hx_cb {
    hx_event done;
    atomic_int calls;
    pthread_t thread;             /* thread of the last call */
    int32_t is_completed;         /* apm_async_result_is_completed inside */
    int32_t completed_sync;       /* apm_async_result_completed_synchronously inside */
    apm_async_result *result;     /* handle the callback received */
    void *state_from_result;      /* apm_async_result_state inside */
} hx_cb;

void hx_cb_init(hx_cb *cb);
void hx_cb_destroy(hx_cb *cb);
void hx_cb_record(apm_async_result *result, void *state);
#define HX_CB_CALLS(cb) atomic_load(&(cb)->calls)

pthread_t hx_thread_start(void *(*fn)(void *), void *arg);
void *hx_thread_join(pthread_t t);

/* ------------------------------------------------------------------ */
/* Plain POSIX sockets on 127.0.0.1 (the peers)                        */
/* ------------------------------------------------------------------ */

/* Listen on 127.0.0.1 port 0; returns the fd and writes the port. */
int hx_tcp_listen(int *port);
int hx_tcp_accept(int listen_fd);
int hx_tcp_connect(int port);
/* A port with nothing listening on it (bound, read back, closed). */
int hx_free_port(void);
void hx_write_all(int fd, const void *data, size_t len);
/* Read until `len` bytes or EOF; returns the count. */
size_t hx_read_full(int fd, void *data, size_t len);
/* Arrange for close() to send a reset (SO_LINGER on, 0 seconds), then close. */
void hx_close_with_reset(int fd);
void hx_close(int fd);

/* A thread that reads an fd to EOF, keeping the bytes (keep=1) or only
 * counting and hashing them. */
typedef struct hx_drain {
    int fd;
    int keep;
    uint8_t *data;
    size_t len;
    size_t cap;
    uint64_t count;
    int close_fd;       /* close fd when done (default 1) */
    pthread_t thread;
} hx_drain;

void hx_drain_start(hx_drain *d, int fd, int keep);
/* Joins the thread; the caller frees d->data. */
void hx_drain_join(hx_drain *d);

/* ------------------------------------------------------------------ */
/* apm helpers                                                         */
/* ------------------------------------------------------------------ */

apm_socket *hx_apm_tcp4(void);
/* An apm listener on 127.0.0.1 port 0 (backlog 128). */
apm_socket *hx_apm_listener(int *port);
/* A connected pair of apm sockets (client, accepted server side). */
void hx_apm_pair(apm_socket **client, apm_socket **server);
/* An apm client connected to a plain POSIX peer fd. */
apm_socket *hx_apm_connect_to_fd(int *peer_fd);
/* Two network streams over a connected pair; each owns its socket. */
void hx_stream_pair(apm_stream **a, apm_stream **b);
int32_t hx_connected(apm_socket *s);

/* A throwaway self-signed test certificate (CN=localhost, P-256, valid
 * until 2126) and its unencrypted PKCS#8 key, as PEM text. Nothing secret. */
extern const char hx_test_cert_pem[];
extern const char hx_test_key_pem[];

/* ------------------------------------------------------------------ */
/* Python peers                                                        */
/* ------------------------------------------------------------------ */

typedef struct hx_peer {
    pid_t pid;
    int out_fd;   /* the peer's stdout */
} hx_peer;

/* Start `$APMNET_PYTHON $APMNET_FFI_DIR/peers/<script> args...` with its
 * stdout on a pipe. args is NULL-terminated (or NULL). */
void hx_peer_start(hx_peer *p, const char *script, const char *const *args);
/* Start any program (argv[0] looked up in PATH; argv NULL-terminated) with its stdout on a
 * pipe; skips the test when it cannot be started. */
void hx_process_start(hx_peer *p, const char *const *argv);
/* Read one line (without the newline); fails the test on EOF or timeout. */
void hx_peer_read_line(hx_peer *p, char *buf, size_t len);
/* Wait for the peer to exit; returns its exit status (or 128+signal). */
int hx_peer_wait(hx_peer *p);

/* ------------------------------------------------------------------ */
/* Data, files                                                         */
/* ------------------------------------------------------------------ */

/* The byte at absolute `offset` of pattern `seed`. */
static inline uint8_t hx_pattern_byte(uint64_t seed, uint64_t offset)
{
    uint64_t x = offset * 0x9E3779B97F4A7C15ull + seed * 0xD1B54A32D192ED03ull;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> 24);
}
void hx_pattern_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset);
/* Index of the first byte that differs from the pattern, or len. */
size_t hx_pattern_check(const uint8_t *buf, size_t len, uint64_t seed, uint64_t offset);
size_t hx_mem_diff(const void *a, const void *b, size_t len);

void *hx_xmalloc(size_t len);

/* A new empty temporary file (removed when the test fails); the caller
 * unlinks it and frees *path. Returns an fd open for reading and writing. */
int hx_temp_file(char **path);
/* A new temporary file holding `len` bytes of `data`; the caller removes it
 * with hx_temp_remove. */
char *hx_temp_file_with(const void *data, size_t len);
/* Unlinks and forgets a temporary file and frees its path. */
void hx_temp_remove(char *path);
/* A path in the temporary directory that does not exist (malloc'ed). */
char *hx_temp_missing_path(const char *suffix);
/* Forget a temporary file after the test removed it itself. */
void hx_temp_forget(const char *path);

typedef struct hx_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t buf_len;
} hx_sha256;

void hx_sha256_init(hx_sha256 *c);
void hx_sha256_update(hx_sha256 *c, const void *data, size_t len);
/* Writes 64 hex characters and a NUL. */
void hx_sha256_hex(hx_sha256 *c, char out[65]);

/* ------------------------------------------------------------------ */
/* A temporary PKI (peers/make_pki.py: ca, server, client, expired,    */
/* selfsigned, wronghost); the test is skipped without openssl          */
/* ------------------------------------------------------------------ */

/* Reads a stream to its end with blocking reads; the caller frees the bytes (NUL-terminated);
 * `len` (optional) gets their count. */
char *hx_read_to_end(apm_stream *st, size_t *len);
/* The body of a response, read to its end (as hx_read_to_end; the stream is closed). */
char *hx_response_body(apm_http_response *resp, size_t *len);
/* The value of `key=` in a "k=v k=v" text (a static buffer); fails the test when absent. */
const char *hx_field(const char *text, const char *key);
/* Writes the NTLM users the peers' servers accept (TESTDOM:alice:Passw0rd!) to a file once and
 * points NTLM_USER_FILE (gss-ntlmssp's and pyspnego's) at it. */
void hx_ntlm_users_file(void);
/* Starts a throw-away MIT Kerberos realm APMNET.TEST with its KDC on loopback
 * (peers/krb5-loopback.sh: principals alice, password Passw0rd!, host/localhost and HTTP/localhost
 * in the keytab) and exports its environment (KRB5_CONFIG, KRB5_KTNAME, KRB5CCNAME); returns its
 * directory. Skips the test when the KDC is not installed. */
const char *hx_realm_start(void);
/* Stops the KDC and removes the realm's directory. */
void hx_realm_stop(void);

void hx_pki_make(void);
void hx_pki_remove(void);
const char *hx_pki_dir(void);
/* The path of a file of the PKI (rotating static buffers). */
const char *hx_pki_file(const char *name);
/* The certificate NAME.pem with its private key NAME.key. */
apm_certificate *hx_pki_load(const char *name);

#endif /* APMNET_FFI_HARNESS_H */
