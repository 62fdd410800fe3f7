/*
 * ffi-tests/misuse.c - the misuse fuzzer (issue 12, item 3).
 *
 * Four threads make seeded random calls across every export of apmnet.h, against real loopback
 * peers: connected socket pairs, NetworkStreams, SslStreams authenticated over a socket pair with
 * the harness's self-signed certificate, SslStreams not yet authenticated, streams defined here
 * in C (whose operations complete inline, later on a completer thread, with errors, with lies
 * about the byte count) and SslStreams over them, listeners, certificates and transport contexts.
 * Every handle argument is drawn from: a live handle of the right kind, a closed (stale) one, a
 * live handle of another kind (a socket passed as a stream, a result as a certificate), NULL,
 * random 64-bit values, real pointers that are no handles, small integers and stale-generation
 * variants of live handles. Offsets, counts and sizes go up to SIZE_MAX (the buffer lengths
 * passed stay truthful), out-parameters are sometimes NULL. Callbacks End their own result, End
 * completed foreign results, make second Ends, close objects, Begin again and call
 * apm_runtime_shutdown (which they must be refused); the fuzzing threads call it too. Blocking
 * calls are guarded by a watchdog that closes their object when they take too long, which is one
 * more misuse: a close racing a blocking call (an accept on a listener that is kept open gets
 * connections instead). A seed fixes each thread's choices, not how the threads interleave.
 *
 * Pass means:
 *   - no crash, no hang (a blocking call that does not return once everything was closed fails);
 *   - every status is a defined APM_* status, never APM_E_INTERNAL, and a failure is the thread's
 *     last error; out-parameters are left alone on failure;
 *   - a call given a handle known to be bad (closed, wrong kind, garbage, NULL) never succeeds
 *     (close of a closed handle and CanRead/CanWrite of a closed stream excepted, as documented);
 *     every End that is not the first End of its own result fails; apm_custom_stream_complete of
 *     a token that is not pending is APM_E_ARGUMENT; a second End is APM_E_INVALID_OPERATION;
 *   - every Begin that returned APM_OK runs its callback exactly once (counted per result), a
 *     failed Begin never; every such result is ended (by its callback, by a thread that claimed
 *     it, or at the end, after every object was closed, which must complete it); End releases it,
 *     and only the matching End does;
 *   - no valgrind error (the harness's APMNET_VALGRIND mode; the run is shorter there).
 *
 * Environment:
 *   APMNET_MISUSE_SEED    the seed (default: from the clock; printed either way)
 *   APMNET_MISUSE_CALLS   how many apmnet calls in all (default 100000; 20000 under valgrind)
 *   APMNET_MISUSE_SHUTDOWN=0  no apm_runtime_shutdown from the fuzzing threads
 *   APMNET_MISUSE_STRICT=all (the default), none, or some of kinds,shutdown,listeners: which
 *                         of these checks run (each found a bug, since fixed):
 *                         kinds: live handles with their kind byte changed, and live handles of
 *                           other kinds as custom-stream tokens, must be refused (the table
 *                           once ignored the kind byte);
 *                         shutdown: a handshake on a private socket pair must complete even when
 *                           apm_runtime_shutdown runs meanwhile (an operation begun while an
 *                           engine thread exited once stayed pending until its socket closed);
 *                         listeners: listeners are closed at any time, also with accepts that
 *                           completed and are not ended yet (their End after the close once
 *                           leaked the accepted connection)
 *   APMNET_MISUSE_VERBOSE=1   print the calls and successes of every export at the end, and
 *                         actions that took over a second
 *   APMNET_MISUSE_GDB=1   on a hang, print every thread's stack (gdb -p) before failing
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MZ_THREADS 4

/* ------------------------------------------------------------------ */
/* Configuration, random numbers                                       */
/* ------------------------------------------------------------------ */

static unsigned long long g_seed;
static long g_target;
static int g_valgrind;
/* APMNET_MISUSE_STRICT: the checks of the kind byte, of operations begun while the engine stops,
 * and of accepts ended after their listener closed; all on by default. */
static int g_strict_kinds, g_strict_shutdown, g_strict_listeners;
static int g_allow_shutdown;
static int g_wd_ms;     /* a blocking call's object is closed after this long */
static int g_setup_ms;  /* how long a setup handshake may take */
static atomic_int g_stopping;
static atomic_int g_cb_active; /* callbacks that may be running actions */

static _Thread_local uint64_t tl_rng;
static _Thread_local int tl_rng_seeded;
static atomic_uint g_rng_streams;

static uint64_t rnd(void)
{
    uint64_t z;
    if (!tl_rng_seeded) {
        /* Threads that are not fuzzing threads (engine threads running callbacks, the
         * completer, the watchdog) get streams of their own. */
        tl_rng = g_seed ^ (0xA0761D6478BD642Full * (100 + atomic_fetch_add(&g_rng_streams, 1)));
        tl_rng_seeded = 1;
    }
    z = (tl_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t below(uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rnd() % n);
}

static size_t below_sz(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

static int chance(int percent)
{
    return (int)below(100) < percent;
}

#define PICK(arr) ((arr)[below((uint32_t)(sizeof(arr) / sizeof((arr)[0])))])

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return (v == NULL || *v == '\0') ? dflt : strtol(v, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* The exports, counted                                                */
/* ------------------------------------------------------------------ */

#define MZ_EXPORTS(X) \
    X(async_result_cancel) X(async_result_completed_synchronously) X(async_result_is_completed) \
    X(async_result_state) X(async_result_wait) X(certificate_close) X(certificate_get_issuer) \
    X(certificate_get_raw_data) X(certificate_get_subject) X(certificate_get_thumbprint) \
    X(certificate_get_validity) X(certificate_has_private_key) X(certificate_load_der) \
    X(certificate_load_pem) X(certificate_load_pem_file) X(certificate_load_pkcs12_file) \
    X(custom_stream_complete) X(last_error_clear) X(last_error_errno) X(last_error_http_status) \
    X(last_error_inner_message) X(last_error_message) X(last_error_socket_error) \
    X(last_error_status) X(last_error_web_status) X(network_stream_create) \
    X(network_stream_create_with_access) X(runtime_configure) X(runtime_shutdown) \
    X(socket_accept) X(socket_begin_accept) X(socket_begin_connect) X(socket_begin_receive) \
    X(socket_begin_send) X(socket_begin_send_file) X(socket_begin_send_file_with_progress) \
    X(socket_bind) X(socket_close) X(socket_connect) X(socket_create) X(socket_end_accept) \
    X(socket_end_connect) X(socket_end_receive) X(socket_end_send) X(socket_end_send_file) \
    X(socket_get_available) X(socket_get_connected) X(socket_get_linger) \
    X(socket_get_local_endpoint) X(socket_get_no_delay) X(socket_get_receive_buffer_size) \
    X(socket_get_receive_timeout) X(socket_get_remote_endpoint) X(socket_get_send_buffer_size) \
    X(socket_get_send_timeout) X(socket_listen) X(socket_receive) X(socket_send) \
    X(socket_send_file) X(socket_set_linger) X(socket_set_no_delay) \
    X(socket_set_receive_buffer_size) X(socket_set_receive_timeout) \
    X(socket_set_send_buffer_size) X(socket_set_send_timeout) X(socket_shutdown) \
    X(ssl_stream_authenticate_as_client) X(ssl_stream_authenticate_as_server) \
    X(ssl_stream_begin_authenticate_as_client) X(ssl_stream_begin_authenticate_as_server) \
    X(ssl_stream_begin_shutdown) X(ssl_stream_create) X(ssl_stream_end_authenticate_as_client) \
    X(ssl_stream_end_authenticate_as_server) X(ssl_stream_end_shutdown) \
    X(ssl_stream_get_application_protocol) X(ssl_stream_get_cipher_suite) \
    X(ssl_stream_get_cipher_suite_name) X(ssl_stream_get_local_certificate) \
    X(ssl_stream_get_remote_certificate) X(ssl_stream_get_ssl_protocol) \
    X(ssl_stream_get_target_host_name) X(ssl_stream_get_transport_context) \
    X(ssl_stream_is_authenticated) X(ssl_stream_is_encrypted) \
    X(ssl_stream_is_mutually_authenticated) X(ssl_stream_is_server) X(ssl_stream_is_signed) \
    X(ssl_stream_set_application_protocols) X(ssl_stream_set_selection_callback) \
    X(ssl_stream_set_trusted_ca_file) X(ssl_stream_set_validation_callback) \
    X(ssl_stream_shutdown) X(status_name) X(stream_begin_read) X(stream_begin_write) \
    X(stream_can_read) X(stream_can_write) X(stream_close) X(stream_create_custom) \
    X(stream_end_read) X(stream_end_write) X(stream_read) X(stream_write) \
    X(transport_context_close) X(transport_context_get_channel_binding) \
    X(transport_context_get_channel_binding_token) X(version) X(version_number)

#define MZ_ID(n) E_##n,
enum mz_export { MZ_EXPORTS(MZ_ID) E_COUNT };
#define MZ_NAME(n) "apm_" #n,
static const char *const mz_names[E_COUNT] = {MZ_EXPORTS(MZ_NAME)};

static atomic_long g_calls[E_COUNT];
static atomic_long g_oks[E_COUNT];
static atomic_long g_total;
static atomic_long g_actions, g_callbacks, g_begun, g_begun_cb, g_ended, g_validations;
static atomic_long g_watchdog_closes, g_shutdowns, g_custom_ops, g_stuck_handshakes;

/* How sure we are that a handle argument is bad: LIVE (probably valid: no assertion), STALE
 * (closed or ended: the call must fail, bar the documented exceptions), BAD (NULL, garbage,
 * another kind: the call must fail). */
enum { Q_LIVE, Q_STALE, Q_BAD };

static int qworst(int a, int b)
{
    return a > b ? a : b;
}

static _Noreturn void mz_fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static _Noreturn void mz_fail(int line, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    hx_fail(__FILE__, line, "%s [repeat with APMNET_MISUSE_SEED=%llu]", text, g_seed);
}

static int stale_may_succeed(int id)
{
    /* Close is idempotent; CanRead/CanWrite of a closed stream report 0. */
    return id == E_socket_close || id == E_stream_close || id == E_certificate_close ||
           id == E_transport_context_close || id == E_stream_can_read || id == E_stream_can_write;
}

static void count_call(int id, int ok)
{
    atomic_fetch_add(&g_calls[id], 1);
    atomic_fetch_add(&g_total, 1);
    if (ok)
        atomic_fetch_add(&g_oks[id], 1);
}

/* The checks every status goes through. */
/* The last pick of this thread was a live handle with another kind byte. If another thread closes
 * that object and its slot is reused before the call, the forged key reads as a stale handle of
 * the forged kind, whose close is a no-op: that is not a failure. */
static _Thread_local int g_forged;

static apm_status mz_ret(int id, apm_status st, int q, int line)
{
    count_call(id, st == APM_OK);
    if (st > 0 || st < APM_E_CRYPTOGRAPHIC || strcmp(apm_status_name(st), "APM_UNKNOWN") == 0)
        mz_fail(line, "%s returned %d, which is no defined apm_status", mz_names[id], (int)st);
    if (st == APM_E_INTERNAL)
        mz_fail(line, "%s returned APM_E_INTERNAL: \"%s\"", mz_names[id], hx_last_message());
    if (st != APM_OK && id != E_last_error_message && id != E_last_error_inner_message &&
        apm_last_error_status() != st)
        mz_fail(line, "%s returned %s but the last error is %s", mz_names[id], hx_status_name(st),
                hx_status_name(apm_last_error_status()));
    if (st == APM_OK && q != Q_LIVE && !((q == Q_STALE || (q == Q_BAD && g_forged)) && stale_may_succeed(id)))
        mz_fail(line, "%s succeeded with a %s handle argument", mz_names[id],
                q == Q_STALE ? "closed (stale)" : "bad (NULL, garbage or wrong-kind)");
    return st;
}

#define CALL(id, expr) mz_ret(E_##id, (expr), Q_LIVE, __LINE__)
#define CALLQ(id, q, expr) mz_ret(E_##id, (expr), (q), __LINE__)
#define COUNT(id) count_call(E_##id, 1)

/* "Out-parameters are written only on success." */
#define SENT_PTR ((void *)(uintptr_t)0x5eedf00d5eedf00dull)
#define SENT_SZ ((size_t)0x5eedf00d5eedf00dull)
#define SENT_I32 ((int32_t)0x5eedf00d)
#define SENT_I64 ((int64_t)0x5eedf00d5eedf00dll)
#define CHECK_OUT(st, var, sentinel, line)                                                   \
    do {                                                                                     \
        if ((st) != APM_OK && (var) != (sentinel))                                           \
            mz_fail((line), "an out-parameter was written by a call that failed with %s",    \
                    hx_status_name(st));                                                     \
    } while (0)

/* Sometimes NULL instead of an out-parameter. */
#define OUTP(p) (chance(5) ? NULL : (p))

/* ------------------------------------------------------------------ */
/* The objects: units (what a scenario made), extras, closed handles   */
/* ------------------------------------------------------------------ */

enum mz_kind { K_NONE, K_SOCKET, K_NSTREAM, K_SSL, K_CUSTOM, K_CERT, K_TCTX, K_RESULT };
enum mz_class { C_SOCKET, C_STREAM, C_SSL, C_CERT, C_TCTX, C_RESULT };

static int kind_in_class(int kind, int cls)
{
    switch (cls) {
    case C_SOCKET: return kind == K_SOCKET;
    case C_STREAM: return kind == K_NSTREAM || kind == K_SSL || kind == K_CUSTOM;
    case C_SSL: return kind == K_SSL;
    case C_CERT: return kind == K_CERT;
    case C_TCTX: return kind == K_TCTX;
    default: return kind == K_RESULT;
    }
}

typedef struct mz_h {
    void *h;
    int kind;
} mz_h;

enum mz_utype {
    U_LISTENER, U_FRESH, U_SOCKPAIR, U_NSPAIR, U_SSL_AUTH, U_SSL_FRESH, U_CUSTOM, U_SSL_CUSTOM,
    U_CERTS, U_TYPES
};

#define MZ_UNIT_MAX 8
typedef struct mz_unit {
    int n;
    mz_h h[MZ_UNIT_MAX];
} mz_unit;

#define MZ_UNITS (3 * U_TYPES)
#define MZ_EXTRAS 48
#define MZ_STALE 256

static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static mz_unit g_units[MZ_UNITS];
static mz_h g_extras[MZ_EXTRAS];
static unsigned g_extras_next;
static mz_h g_stale[MZ_STALE];
static unsigned g_stale_next;
static apm_certificate *g_master; /* the test certificate with its key; never closed by fuzzing */
static uint8_t g_der[4096];
static size_t g_der_len;

static int utype_of(int i)
{
    return i % U_TYPES;
}

static void stale_push(void *h, int kind)
{
    pthread_mutex_lock(&g_pool_mu);
    g_stale[g_stale_next++ % MZ_STALE] = (mz_h){h, kind};
    pthread_mutex_unlock(&g_pool_mu);
}

/* Closes a handle this program owns with the function of its kind; it is stale afterwards. */
static void close_owned(mz_h x)
{
    apm_status st = APM_OK;
    switch (x.kind) {
    case K_SOCKET: st = CALL(socket_close, apm_socket_close((apm_socket *)x.h)); break;
    case K_NSTREAM:
    case K_SSL:
    case K_CUSTOM: st = CALL(stream_close, apm_stream_close((apm_stream *)x.h)); break;
    case K_CERT: st = CALL(certificate_close, apm_certificate_close((apm_certificate *)x.h)); break;
    case K_TCTX:
        st = CALL(transport_context_close, apm_transport_context_close((apm_transport_context *)x.h));
        break;
    default: return;
    }
    if (st == APM_E_ARGUMENT || st == APM_E_ARGUMENT_NULL)
        mz_fail(__LINE__, "closing an owned handle of kind %d failed with %s", x.kind, hx_status_name(st));
    stale_push(x.h, x.kind);
}

/* A new handle the fuzzer made: kept among the extras, whose oldest is closed. */
static void extras_add(void *h, int kind)
{
    mz_h old = {NULL, K_NONE};
    if (h == NULL)
        return;
    if (atomic_load(&g_stopping)) {
        close_owned((mz_h){h, kind});
        return;
    }
    pthread_mutex_lock(&g_pool_mu);
    old = g_extras[g_extras_next % MZ_EXTRAS];
    g_extras[g_extras_next++ % MZ_EXTRAS] = (mz_h){h, kind};
    pthread_mutex_unlock(&g_pool_mu);
    if (old.h != NULL)
        close_owned(old);
}

static void unit_close(mz_unit *u)
{
    int order[MZ_UNIT_MAX];
    for (int i = 0; i < u->n; i++)
        order[i] = i;
    if (chance(30)) { /* inner objects first, sometimes */
        for (int i = u->n - 1; i > 0; i--) {
            int j = (int)below((uint32_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    for (int i = 0; i < u->n; i++)
        close_owned(u->h[order[i]]);
    u->n = 0;
}

/* Takes unit i out of the pool (it is empty until refilled). */
static mz_unit unit_take(int i)
{
    mz_unit u;
    pthread_mutex_lock(&g_pool_mu);
    u = g_units[i];
    g_units[i].n = 0;
    pthread_mutex_unlock(&g_pool_mu);
    return u;
}

static void unit_install(int i, mz_unit *u)
{
    mz_unit old;
    pthread_mutex_lock(&g_pool_mu);
    old = g_units[i];
    g_units[i] = *u;
    pthread_mutex_unlock(&g_pool_mu);
    unit_close(&old);
}

/* The listeners of the listener units are the only sockets that get connections. Unless strict,
 * they stay open until the end of the run: an accept that completed and is ended after its
 * listener was closed leaks the accepted connection (reported), so closing them is left to the
 * end, after every accept was ended. */
static int keep_listeners(void)
{
    return !g_strict_listeners && !atomic_load(&g_stopping);
}

static void *g_units_h0(int i)
{
    void *h;
    pthread_mutex_lock(&g_pool_mu);
    h = g_units[i].n > 0 ? g_units[i].h[0].h : NULL;
    pthread_mutex_unlock(&g_pool_mu);
    return h;
}

static int is_unit_listener(void *h)
{
    int found = 0;
    pthread_mutex_lock(&g_pool_mu);
    for (int i = U_LISTENER; i < MZ_UNITS && !found; i += U_TYPES)
        found = g_units[i].n > 0 && g_units[i].h[0].h == h;
    pthread_mutex_unlock(&g_pool_mu);
    return found;
}

/* The port a listener unit's socket listens on now (a shutdown and a listen again move it), or 0. */
static int32_t listener_unit_port(void *h)
{
    char addr[64];
    int32_t port = 0;
    if (h == NULL || !is_unit_listener(h) ||
        apm_socket_get_local_endpoint((apm_socket *)h, addr, sizeof addr, &port) != APM_OK)
        return 0;
    return port;
}

/* Plain non-blocking connections to a listener: something for a blocking accept to take. */
#define MZ_RAW 256
static pthread_mutex_t g_raw_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_raw[MZ_RAW];
static unsigned g_raw_next;

static void raw_connect(int32_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), old;
    if (fd < 0)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)connect(fd, (struct sockaddr *)&sa, sizeof sa); /* EINPROGRESS: fine */
    pthread_mutex_lock(&g_raw_mu);
    old = g_raw[g_raw_next % MZ_RAW];
    g_raw[g_raw_next++ % MZ_RAW] = fd + 1; /* 0: none */
    pthread_mutex_unlock(&g_raw_mu);
    if (old > 0)
        close(old - 1);
}

static void raw_close_all(void)
{
    for (int i = 0; i < MZ_RAW; i++)
        if (g_raw[i] > 0) {
            close(g_raw[i] - 1);
            g_raw[i] = 0;
        }
}

/* Closes every unit (the listeners too unless keep_listeners()) and every extra: the watchdog's
 * last resort, and the end of the run. */
static void close_everything(void)
{
    for (int i = 0; i < MZ_UNITS; i++) {
        mz_unit u;
        if (utype_of(i) == U_LISTENER && keep_listeners())
            continue;
        u = unit_take(i);
        unit_close(&u);
    }
    for (int i = 0; i < MZ_EXTRAS; i++) {
        mz_h x;
        pthread_mutex_lock(&g_pool_mu);
        x = g_extras[i];
        g_extras[i].h = NULL;
        pthread_mutex_unlock(&g_pool_mu);
        if (x.h != NULL)
            close_owned(x);
    }
}

/* ------------------------------------------------------------------ */
/* Results: one record per Begin                                       */
/* ------------------------------------------------------------------ */

enum mz_end { EK_CONNECT, EK_ACCEPT, EK_SEND, EK_RECEIVE, EK_SENDFILE, EK_WRITE, EK_READ,
              EK_AUTH_C, EK_AUTH_S, EK_SHUTDOWN, EK_COUNT };

static int end_class(int ek)
{
    if (ek <= EK_SENDFILE)
        return C_SOCKET;
    if (ek <= EK_READ)
        return C_STREAM;
    return C_SSL;
}

static int end_has_out(int ek)
{
    return ek == EK_ACCEPT || ek == EK_SEND || ek == EK_RECEIVE || ek == EK_READ;
}

/* FREE: not in use (result, if set, is a released one); BEGIN: Begin running; LIVE: Begin
 * returned APM_OK, not ended; FAILED: Begin failed; ENDED: End released the result, the callback
 * may still be due. */
enum mz_phase { R_FREE, R_BEGIN, R_LIVE, R_FAILED, R_ENDED };

#define MZ_RECS 4096
#define MZ_RECS_SPARE 512 /* a released record waits behind this many before it is reused */

typedef struct mz_rec {
    pthread_mutex_t mu;
    int phase;
    unsigned seq;
    apm_async_result *result;
    void *owner;
    int owner_kind;
    int end_kind;
    size_t count;  /* bytes asked for */
    int has_cb;
    atomic_int cbs;    /* callbacks run */
    atomic_int claim;  /* 1: a thread has the right to End it */
    atomic_int fin;    /* Begin returned + End done + callback done */
    atomic_llong progress;
    _Atomic(apm_async_result *) cb_result;
} mz_rec;

static mz_rec g_recs[MZ_RECS];
static pthread_mutex_t g_rec_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_free_q[MZ_RECS];
static unsigned g_free_head, g_free_tail;
static atomic_int g_recs_live;
static atomic_int g_recs_used; /* high-water mark */

static _Thread_local mz_rec *tl_in_begin;
static _Thread_local int tl_depth;

static void recs_init(void)
{
    for (int i = 0; i < MZ_RECS; i++) {
        pthread_mutex_init(&g_recs[i].mu, NULL);
        g_free_q[i] = i;
    }
    g_free_head = 0;
    g_free_tail = MZ_RECS;
}

static void recs_destroy(void)
{
    for (int i = 0; i < MZ_RECS; i++)
        pthread_mutex_destroy(&g_recs[i].mu);
}

static mz_rec *rec_get(void *owner, int owner_kind, int end_kind, size_t count)
{
    mz_rec *rec;
    int idx;
    pthread_mutex_lock(&g_rec_mu);
    if (g_free_tail - g_free_head <= MZ_RECS_SPARE) {
        pthread_mutex_unlock(&g_rec_mu);
        return NULL;
    }
    idx = g_free_q[g_free_head++ % MZ_RECS];
    pthread_mutex_unlock(&g_rec_mu);
    rec = &g_recs[idx];
    pthread_mutex_lock(&rec->mu);
    rec->phase = R_BEGIN;
    rec->seq++;
    rec->result = NULL;
    rec->owner = owner;
    rec->owner_kind = owner_kind;
    rec->end_kind = end_kind;
    rec->count = count;
    rec->has_cb = !chance(10);
    atomic_store(&rec->cbs, 0);
    atomic_store(&rec->claim, 0);
    atomic_store(&rec->fin, 0);
    atomic_store(&rec->progress, 0);
    atomic_store(&rec->cb_result, NULL);
    pthread_mutex_unlock(&rec->mu);
    for (;;) {
        int used = atomic_load(&g_recs_used);
        if (idx < used || atomic_compare_exchange_weak(&g_recs_used, &used, idx + 1))
            break;
    }
    return rec;
}

static void rec_put(mz_rec *rec)
{
    pthread_mutex_lock(&g_rec_mu);
    g_free_q[g_free_tail++ % MZ_RECS] = (int)(rec - g_recs);
    pthread_mutex_unlock(&g_rec_mu);
}

static int rec_phase(mz_rec *rec)
{
    int p;
    pthread_mutex_lock(&rec->mu);
    p = rec->phase;
    pthread_mutex_unlock(&rec->mu);
    return p;
}

/* One of the three things a successful Begin waits for is done (Begin returned, End released
 * the result, the callback ran); the last one frees the record. */
static void rec_fin(mz_rec *rec)
{
    int need = rec->has_cb ? 3 : 2;
    if (atomic_fetch_add(&rec->fin, 1) + 1 == need) {
        pthread_mutex_lock(&rec->mu);
        rec->phase = R_FREE;
        pthread_mutex_unlock(&rec->mu);
        atomic_fetch_sub(&g_recs_live, 1);
        rec_put(rec);
    }
}

static int try_claim(mz_rec *rec)
{
    int zero = 0;
    return atomic_compare_exchange_strong(&rec->claim, &zero, 1);
}

static void unclaim(mz_rec *rec)
{
    atomic_store(&rec->claim, 0);
}

typedef struct mz_snap {
    mz_rec *rec;
    unsigned seq;
    int phase;
    apm_async_result *result;
    void *owner;
    int owner_kind;
    int end_kind;
} mz_snap;

static mz_snap rec_snap(mz_rec *rec)
{
    mz_snap s;
    pthread_mutex_lock(&rec->mu);
    s.rec = rec;
    s.seq = rec->seq;
    s.phase = rec->phase;
    s.result = rec->result;
    s.owner = rec->owner;
    s.owner_kind = rec->owner_kind;
    s.end_kind = rec->end_kind;
    pthread_mutex_unlock(&rec->mu);
    return s;
}

static mz_rec *rec_random(void)
{
    int used = atomic_load(&g_recs_used);
    return used == 0 ? NULL : &g_recs[below((uint32_t)used)];
}

/* Claims the result of a snapshot that was LIVE, if it still is the same operation. */
static int claim_snap(const mz_snap *s)
{
    int ok;
    if (!try_claim(s->rec))
        return 0;
    pthread_mutex_lock(&s->rec->mu);
    ok = s->rec->seq == s->seq && s->rec->phase == R_LIVE;
    pthread_mutex_unlock(&s->rec->mu);
    if (!ok)
        unclaim(s->rec);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Picking handle arguments                                            */
/* ------------------------------------------------------------------ */

typedef struct mz_pick {
    void *h;
    int q;
    int kind;
} mz_pick;

static int pool_live(int cls, mz_h *out)
{
    int found = 0;
    pthread_mutex_lock(&g_pool_mu);
    for (int tries = 0; tries < 12 && !found; tries++) {
        mz_h e;
        if (chance(20)) {
            e = g_extras[below(MZ_EXTRAS)];
        } else {
            mz_unit *u = &g_units[below(MZ_UNITS)];
            if (u->n == 0)
                continue;
            e = u->h[below((uint32_t)u->n)];
        }
        if (e.h != NULL && kind_in_class(e.kind, cls)) {
            *out = e;
            found = 1;
        }
    }
    pthread_mutex_unlock(&g_pool_mu);
    return found;
}

static int pool_stale(int cls, mz_h *out)
{
    int found = 0;
    pthread_mutex_lock(&g_pool_mu);
    for (int tries = 0; tries < 12 && !found; tries++) {
        mz_h e = g_stale[below(MZ_STALE)];
        if (e.h != NULL && (kind_in_class(e.kind, cls) ||
                            (cls == C_SSL && kind_in_class(e.kind, C_STREAM)))) {
            *out = e;
            found = 1;
        }
    }
    pthread_mutex_unlock(&g_pool_mu);
    return found;
}

static int live_result(mz_snap *out)
{
    for (int tries = 0; tries < 8; tries++) {
        mz_rec *rec = rec_random();
        mz_snap s;
        if (rec == NULL)
            return 0;
        s = rec_snap(rec);
        if (s.phase == R_LIVE && s.result != NULL) {
            *out = s;
            return 1;
        }
    }
    return 0;
}

/* A live handle of another class. */
static int pool_other(int cls, mz_h *out)
{
    static const int classes[] = {C_SOCKET, C_STREAM, C_CERT, C_TCTX, C_RESULT};
    for (int tries = 0; tries < 6; tries++) {
        int c = PICK(classes);
        mz_snap s;
        if (c == cls || (cls == C_SSL && c == C_STREAM && chance(50)))
            continue;
        if (c == C_RESULT) {
            if (live_result(&s)) {
                *out = (mz_h){s.result, K_RESULT};
                return 1;
            }
        } else if (pool_live(c, out) && !kind_in_class(out->kind, cls)) {
            return 1;
        }
    }
    return 0;
}

static void *with_key(uint64_t key)
{
    return (void *)(uintptr_t)key;
}

/* Garbage for a handle of class cls: never a value that could name a live object (the handle
 * table does not check the kind byte, so only stale generations and impossible keys are used,
 * unless APMNET_MISUSE_STRICT asks for kind-byte variants). */
static mz_pick garbage(int cls)
{
    static uint8_t somewhere[16];
    mz_h base;
    int have = cls == C_RESULT ? 0 : pool_live(cls, &base);
    uint64_t key = have ? (uint64_t)(uintptr_t)base.h : 0;
    mz_snap s;
    if (cls == C_RESULT && live_result(&s)) {
        have = 1;
        key = (uint64_t)(uintptr_t)s.result;
    }
    switch (below(9)) {
    case 0: return (mz_pick){NULL, Q_BAD, K_NONE};
    case 1: { /* random 64 bits: a generation that was never handed out, in practice */
        uint64_t v = rnd() | 0x80000000ull;
        if ((v >> 56) == 0)
            v |= 1ull << 60;
        return (mz_pick){(void *)(uintptr_t)v, Q_BAD, K_NONE};
    }
    case 2: { /* real pointers, no handles */
        void *ptrs[] = {somewhere, &somewhere[7], g_units, g_recs, (void *)&g_total};
        return (mz_pick){PICK(ptrs), Q_BAD, K_NONE};
    }
    case 3: {
        static const uint64_t small[] = {1, 2, 3, 0xff, 0x100000000ull, 0xffffffffull, UINT64_MAX,
                                         0x0100000000000000ull, 0x0700000000000000ull};
        return (mz_pick){(void *)(uintptr_t)PICK(small), Q_BAD, K_NONE};
    }
    case 4:
        if (have && (uint32_t)key > 1) /* the generation before: a closed object's */
            return (mz_pick){with_key(key - 1), Q_STALE, K_NONE};
        break;
    case 5:
        if (have) /* generation 0, or one not handed out yet */
            return (mz_pick){with_key(chance(50) ? (key & ~0xffffffffull) : (key | 0xffffffffull)),
                             Q_BAD, K_NONE};
        break;
    case 6:
        if (have) /* an index with no slot */
            return (mz_pick){with_key(key | 0x00ffffff00000000ull), Q_BAD, K_NONE};
        break;
    case 7:
        if (have) /* kind byte 0 */
            return (mz_pick){with_key(key & 0x00ffffffffffffffull), Q_BAD, K_NONE};
        break;
    default:
        if (have && g_strict_kinds) { /* another kind byte on a live handle */
            uint64_t k = (key >> 56) == 0xee ? 0x05 : 0xee;
            if (chance(50))
                k = 1 + ((key >> 56) % 7);
            g_forged = 1;
            return (mz_pick){with_key((key & 0x00ffffffffffffffull) | (k << 56)), Q_BAD, K_NONE};
        }
        break;
    }
    return (mz_pick){NULL, Q_BAD, K_NONE};
}

static mz_pick pick(int cls)
{
    unsigned r = below(100);
    g_forged = 0;
    mz_h e;
    if (r < 62 && pool_live(cls, &e))
        return (mz_pick){e.h, Q_LIVE, e.kind};
    if (r < 74 && pool_stale(cls, &e))
        return (mz_pick){e.h, Q_STALE, e.kind};
    if (r < 84 && pool_other(cls, &e))
        return (mz_pick){e.h, Q_BAD, e.kind};
    return garbage(cls);
}

/* A handle of a unit of one type (a listener, a fresh socket), else any pick. */
static mz_pick pick_in(int utype, int cls)
{
    mz_pick p = {NULL, Q_BAD, K_NONE};
    int found = 0;
    pthread_mutex_lock(&g_pool_mu);
    for (int tries = 0; tries < 6 && !found; tries++) {
        int i = (int)below(3) * U_TYPES + utype;
        mz_unit *u = &g_units[i];
        for (int j = 0; j < u->n && !found; j++) {
            if (kind_in_class(u->h[j].kind, cls)) {
                p = (mz_pick){u->h[j].h, Q_LIVE, u->h[j].kind};
                found = 1;
            }
        }
    }
    pthread_mutex_unlock(&g_pool_mu);
    return found ? p : pick(cls);
}

/* An optional certificate argument: NULL is valid. */
static mz_pick pick_cert_arg(void)
{
    unsigned r = below(100);
    mz_pick p;
    if (r < 35)
        return (mz_pick){g_master, Q_LIVE, K_CERT};
    p = r < 50 ? (mz_pick){NULL, Q_LIVE, K_CERT} : pick(C_CERT);
    if (p.h == NULL) /* none: valid for a client; for a server, valid with a selection callback */
        p.q = Q_LIVE;
    return p;
}

typedef struct mz_rpick {
    void *h;
    int q;
    mz_snap s; /* s.rec NULL: not a result of ours */
} mz_rpick;

static mz_rpick pick_result(void)
{
    mz_rpick p;
    memset(&p, 0, sizeof p);
    if (chance(80)) {
        for (int tries = 0; tries < 6; tries++) {
            mz_rec *rec = rec_random();
            mz_snap s;
            if (rec == NULL)
                break;
            s = rec_snap(rec);
            if (s.result == NULL)
                continue;
            if (s.phase == R_LIVE) {
                p.h = s.result;
                p.q = Q_LIVE;
                p.s = s;
                return p;
            }
            if (s.phase == R_ENDED || s.phase == R_FREE) {
                p.h = s.result;
                p.q = Q_STALE;
                p.s = s;
                return p;
            }
        }
    }
    if (chance(30)) {
        mz_h e;
        if (pool_other(C_RESULT, &e)) {
            p.h = e.h;
            p.q = Q_BAD;
            return p;
        }
    }
    {
        mz_pick g = garbage(C_RESULT);
        p.h = g.h;
        p.q = g.q;
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* Argument values                                                     */
/* ------------------------------------------------------------------ */

#define MZ_BUF (1u << 20)
static uint8_t *g_wbuf, *g_rbuf;
static char *g_file, *g_missing, *g_cert_file, *g_key_file, *g_both_file, *g_junk_file, *g_p12_file;
static const char *g_dir;
static char g_long_name[300];

static size_t pick_size(size_t len)
{
    switch (below(12)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return len;
    case 3: return len + 1;
    case 4: return SIZE_MAX;
    case 5: return SIZE_MAX - 1;
    case 6: return len / 2;
    case 7: return below_sz(len + 1);
    case 8: return (size_t)1 << (sizeof(size_t) * 8 - 1);
    case 9: return (size_t)rnd();
    case 10: return SIZE_MAX - len + 1; /* offset + count wraps around */
    default: return below(64);
    }
}

/* A buffer inside base[0..cap) with a truthful length, or NULL with any length. */
static void pick_buf(uint8_t *base, size_t cap, uint8_t **p, size_t *len)
{
    switch (below(10)) {
    case 0: *p = NULL; *len = pick_size(cap); break;
    case 1: *p = base; *len = 0; break;
    case 2: *p = base + cap - 16; *len = 16; break; /* at the end: an overrun is caught */
    case 3: *p = base; *len = cap; break;
    default: {
        size_t o = below(4096);
        *p = base + o;
        *len = 1 + below(8192);
        break;
    }
    }
}

static void pick_range(size_t len, size_t *off, size_t *cnt)
{
    if (chance(75)) {
        size_t rest;
        *off = chance(50) ? 0 : below_sz(len + 1);
        rest = len - *off;
        *cnt = chance(85) ? (rest < 1500 ? below_sz(rest + 1) : below(1500)) : below_sz(rest + 1);
    } else {
        *off = pick_size(len);
        *cnt = pick_size(len);
    }
}

static int32_t pick_i32(void)
{
    static const int32_t v[] = {0, 1, -1, 2, -2, 3, 7, 16, 255, 256, 1024, 65535, 65536,
                                INT32_MAX, INT32_MIN, 1000000, 4096};
    return chance(85) ? PICK(v) : (int32_t)rnd();
}

static const char *pick_host(void)
{
    static const char *const hosts[] = {"127.0.0.1", "127.0.0.1", "127.0.0.1", "::1", "localhost",
                                        NULL, "\xff\xfe", "0.0.0.0"};
    return PICK(hosts);
}

/* The port a random listener unit listens on now. */
static int32_t listener_port(void)
{
    int32_t port = 0;
    for (int tries = 0; tries < 4 && port == 0; tries++)
        port = listener_unit_port(g_units_h0((int)below(3) * U_TYPES + U_LISTENER));
    return port;
}

static int32_t pick_port(void)
{
    static const int32_t odd[] = {0, -1, 65536, 65535, INT32_MAX, INT32_MIN, 1};
    int32_t p;
    if (chance(60) && (p = listener_port()) != 0)
        return p;
    if (chance(30))
        return hx_free_port();
    return PICK(odd);
}

static const char *pick_path(void)
{
    const char *paths[] = {g_file, g_missing, g_dir, g_cert_file, g_key_file, g_both_file, g_junk_file, g_p12_file,
                           NULL, "", "\xff\xfe.pem"};
    return PICK(paths);
}

static int32_t pick_protocols(void)
{
    static const int32_t v[] = {0, 0, 0, APM_SSL_PROTOCOLS_TLS12, APM_SSL_PROTOCOLS_TLS13,
                                APM_SSL_PROTOCOLS_TLS12 | APM_SSL_PROTOCOLS_TLS13, APM_SSL_PROTOCOLS_SSL2,
                                APM_SSL_PROTOCOLS_SSL3, APM_SSL_PROTOCOLS_TLS, APM_SSL_PROTOCOLS_TLS11,
                                -1, 0x10000, 1};
    return PICK(v);
}

/* A char buffer with a truthful length: (NULL, 0), (NULL, n) or a real one. */
static void pick_text_buf(char *buf, size_t cap, char **p, size_t *len)
{
    switch (below(6)) {
    case 0: *p = NULL; *len = 0; break;
    case 1: *p = NULL; *len = 1 + below(100); break;
    case 2: *p = buf; *len = 1; break;
    case 3: *p = buf; *len = 1 + below((uint32_t)cap); break;
    default: *p = buf; *len = cap; break;
    }
}

/* After a successful copy into a text buffer: NUL-terminated inside it. */
static void check_text(apm_status st, const char *p, size_t len, int line)
{
    if (st == APM_OK && p != NULL && len > 0 && memchr(p, '\0', len) == NULL)
        mz_fail(line, "a text copied into a buffer of %zu bytes is not NUL-terminated", len);
}

/* ------------------------------------------------------------------ */
/* The watchdog of blocking calls                                      */
/* ------------------------------------------------------------------ */

typedef struct mz_watch {
    pthread_mutex_t mu;
    int64_t deadline; /* 0: not armed */
    int64_t armed_at;
    int stage;
    void *h;
    int kind;
    const char *what;
} mz_watch;

static mz_watch g_watch[MZ_THREADS + 1]; /* the fuzzing threads, then the main thread */
static _Thread_local int tl_index = -1;
static _Atomic(const char *) g_current[MZ_THREADS];
static atomic_int g_wd_stop;

static void wd_arm(void *h, int kind, const char *what)
{
    mz_watch *w;
    if (tl_index < 0)
        return;
    w = &g_watch[tl_index];
    pthread_mutex_lock(&w->mu);
    w->h = h;
    w->kind = kind;
    w->what = what;
    w->stage = 0;
    w->armed_at = hx_now_ms();
    w->deadline = w->armed_at + g_wd_ms;
    pthread_mutex_unlock(&w->mu);
}

static void wd_disarm(void)
{
    mz_watch *w;
    if (tl_index < 0)
        return;
    w = &g_watch[tl_index];
    pthread_mutex_lock(&w->mu);
    w->deadline = 0;
    pthread_mutex_unlock(&w->mu);
}

/* A blocking call, guarded: after g_wd_ms its object is closed, after 10 times that everything
 * is, and a call that still has not returned long after that is a hang. */
#define GUARDED(h, kind, expr) (wd_arm((h), (kind), #expr), mz_guarded_end(expr))
static apm_status mz_guarded_end(apm_status st)
{
    wd_disarm();
    return st;
}

/* A hang: with APMNET_MISUSE_GDB=1, every thread's stack (gdb) goes to stderr first. */
static void dump_stacks(void)
{
    char cmd[128];
    if (env_long("APMNET_MISUSE_GDB", 0) == 0)
        return;
    snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex 'thread apply all bt' 1>&2", (int)getpid());
    if (system(cmd) != 0)
        fprintf(stderr, "misuse: %s failed\n", cmd);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_wd_stop)) {
        hx_sleep_ms(g_valgrind ? 10 : 2);
        for (int i = 0; i <= MZ_THREADS; i++) {
            mz_watch *w = &g_watch[i];
            mz_watch copy;
            int64_t now = hx_now_ms();
            int32_t port;
            pthread_mutex_lock(&w->mu);
            copy = *w;
            pthread_mutex_unlock(&w->mu);
            if (copy.deadline == 0 || now <= copy.deadline)
                continue;
            atomic_fetch_add(&g_watchdog_closes, 1);
            port = copy.kind == K_SOCKET && keep_listeners() ? listener_unit_port(copy.h) : 0;
            pthread_mutex_lock(&w->mu);
            if (w->deadline == copy.deadline) {
                if (port != 0) /* a kept listener: connections, until its accept (behind others) gets one */
                    w->deadline = now + g_wd_ms;
                else
                    w->deadline = now + (++w->stage == 1 ? 10 * g_wd_ms : hx_wait_ms());
            }
            pthread_mutex_unlock(&w->mu);
            if (port != 0 && now - copy.armed_at <= hx_wait_ms()) {
                for (int k = 0; k < 4; k++)
                    raw_connect(port);
            } else if (port == 0 && copy.stage == 0) {
                if (copy.kind == K_SOCKET)
                    apm_socket_close((apm_socket *)copy.h);
                else if (kind_in_class(copy.kind, C_STREAM))
                    apm_stream_close((apm_stream *)copy.h);
            } else if (port == 0 && copy.stage == 1) {
                close_everything();
            } else {
                dump_stacks();
                mz_fail(__LINE__, "a blocking call has not returned %d ms after %s: %s", hx_wait_ms(),
                        port != 0 ? "connections to its listener began" : "every object was closed", copy.what);
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The callback                                                        */
/* ------------------------------------------------------------------ */

static void mz_end_correct(mz_rec *rec, apm_async_result *r, int line);
static apm_status end_call(int ek, void *owner, apm_async_result *r, int null_out, int q, mz_rec *rec, int line);
static void run_action(int in_callback);

static void mz_cb(apm_async_result *result, void *state)
{
    mz_rec *rec = (mz_rec *)state;
    mz_snap s;
    atomic_fetch_add(&g_callbacks, 1);
    if (rec < g_recs || rec >= g_recs + MZ_RECS)
        mz_fail(__LINE__, "a callback got a state that is not the one given to Begin (%p)", state);
    if (atomic_fetch_add(&rec->cbs, 1) != 0)
        mz_fail(__LINE__, "a callback ran a second time for one Begin (end kind %d)", rec->end_kind);
    if (result == NULL)
        mz_fail(__LINE__, "a callback got a NULL result");
    s = rec_snap(rec);
    if (!rec->has_cb)
        mz_fail(__LINE__, "a callback ran for a Begin given no callback");
    if (s.phase == R_FAILED || s.phase == R_FREE)
        mz_fail(__LINE__, "a callback ran for a Begin that failed (phase %d, end kind %d)", s.phase,
                s.end_kind);
    if (s.result != NULL && s.result != result)
        mz_fail(__LINE__, "a callback got another result than its Begin returned");
    atomic_store(&rec->cb_result, result);
    tl_depth++;
    if (try_claim(rec)) {
        int32_t completed = SENT_I32, sync = SENT_I32;
        void *st = NULL;
        apm_status a = CALL(async_result_is_completed, apm_async_result_is_completed(result, &completed));
        if (a != APM_OK || completed != 1)
            mz_fail(__LINE__, "in its callback a result is not completed (%s, %d)", hx_status_name(a),
                    (int)completed);
        if (CALL(async_result_state, apm_async_result_state(result, &st)) != APM_OK || st != rec)
            mz_fail(__LINE__, "in its callback a result's state is not the one given to Begin");
        if (CALL(async_result_completed_synchronously,
                 apm_async_result_completed_synchronously(result, &sync)) != APM_OK ||
            (sync != 0 && sync != 1))
            mz_fail(__LINE__, "CompletedSynchronously failed or is %d", (int)sync);
        if (tl_in_begin == rec && sync != 1)
            mz_fail(__LINE__, "a callback ran inside its Begin but CompletedSynchronously is 0");
        if (chance(75) || atomic_load(&g_stopping)) {
            mz_end_correct(rec, result, __LINE__);
            if (chance(20)) { /* and a second End */
                apm_status st = end_call(rec->end_kind, rec->owner, result, 0, Q_BAD, NULL, __LINE__);
                if (st != APM_E_INVALID_OPERATION && st != APM_E_OBJECT_DISPOSED)
                    mz_fail(__LINE__, "a second End in the callback returned %s", hx_status_name(st));
            }
        } else {
            unclaim(rec);
        }
    }
    atomic_fetch_add(&g_cb_active, 1); /* the end of the run waits for these actions */
    if (!atomic_load(&g_stopping) && tl_depth <= 2) {
        if (chance(2)) {
            apm_status st = CALL(runtime_shutdown, apm_runtime_shutdown());
            if (st != APM_E_INVALID_OPERATION)
                mz_fail(__LINE__, "apm_runtime_shutdown from a callback returned %s", hx_status_name(st));
        }
        for (int k = (int)below(3); k > 0; k--)
            run_action(1);
    }
    atomic_fetch_sub(&g_cb_active, 1);
    tl_depth--;
    rec_fin(rec);
}

static void mz_progress(apm_async_result *result, int64_t bytes_sent, void *state)
{
    mz_rec *rec = (mz_rec *)state;
    long long before;
    (void)result;
    if (rec < g_recs || rec >= g_recs + MZ_RECS)
        mz_fail(__LINE__, "a progress report got a state that is not the one given to Begin");
    if (rec->has_cb && atomic_load(&rec->cbs) != 0)
        mz_fail(__LINE__, "a send file progress report came after the completion callback");
    before = atomic_exchange(&rec->progress, bytes_sent);
    if (bytes_sent < 0 || bytes_sent < before)
        mz_fail(__LINE__, "send file progress went from %lld to %lld bytes", before, (long long)bytes_sent);
}

/* Callback and state of a Begin. */
static apm_async_callback rec_cb(mz_rec *rec)
{
    return rec->has_cb ? mz_cb : NULL;
}

/* After a Begin returned. */
static void mz_begun(mz_rec *rec, apm_status st, apm_async_result *r, int line)
{
    if (st == APM_OK) {
        apm_async_result *seen = atomic_load(&rec->cb_result);
        if (r == NULL || r == SENT_PTR)
            mz_fail(line, "a Begin returned APM_OK without writing its result");
        if (seen != NULL && seen != r)
            mz_fail(line, "a Begin returned another result than its callback got");
        pthread_mutex_lock(&rec->mu);
        rec->result = r;
        if (rec->phase == R_BEGIN)
            rec->phase = R_LIVE;
        pthread_mutex_unlock(&rec->mu);
        atomic_fetch_add(&g_recs_live, 1);
        atomic_fetch_add(&g_begun, 1);
        if (rec->has_cb)
            atomic_fetch_add(&g_begun_cb, 1);
        rec_fin(rec);
    } else {
        if (atomic_load(&rec->cbs) != 0)
            mz_fail(line, "a Begin failed with %s but its callback ran", hx_status_name(st));
        if (r != SENT_PTR)
            mz_fail(line, "a Begin failed with %s but wrote its result", hx_status_name(st));
        pthread_mutex_lock(&rec->mu);
        rec->phase = R_FAILED;
        pthread_mutex_unlock(&rec->mu);
        rec_put(rec);
    }
}

/* A Begin call: expr uses `rec`, its callback and `&r` (or NULL). */
#define DO_BEGIN(id, q, rec, r, expr)                                                        \
    do {                                                                                     \
        mz_rec *mz_saved_ = tl_in_begin;                                                     \
        apm_status mz_st_;                                                                   \
        tl_in_begin = (rec);                                                                 \
        mz_st_ = mz_ret(E_##id, (expr), (q), __LINE__);                                      \
        tl_in_begin = mz_saved_;                                                             \
        mz_begun((rec), mz_st_, (r), __LINE__);                                              \
    } while (0)

/* ------------------------------------------------------------------ */
/* End                                                                 */
/* ------------------------------------------------------------------ */

static const char end_twice_suffix[] = "can only be called once for each asynchronous operation.";
static const char foreign_result_message[] =
    "The IAsyncResult object was not returned from the corresponding asynchronous method on this class.";

/* Calls the End of kind ek; rec (may be NULL) is the record when it is the result's own End. */
static apm_status end_call(int ek, void *owner, apm_async_result *r, int null_out, int q, mz_rec *rec,
                           int line)
{
    apm_status st = APM_OK;
    size_t n = SENT_SZ;
    apm_socket *acc = (apm_socket *)SENT_PTR;
    size_t *np = null_out ? NULL : &n;
    switch (ek) {
    case EK_CONNECT:
        st = mz_ret(E_socket_end_connect, apm_socket_end_connect((apm_socket *)owner, r), q, line);
        break;
    case EK_ACCEPT:
        st = mz_ret(E_socket_end_accept,
                    apm_socket_end_accept((apm_socket *)owner, r, null_out ? NULL : &acc), q, line);
        CHECK_OUT(st, acc, (apm_socket *)SENT_PTR, line);
        if (st == APM_OK) {
            if (acc == NULL || acc == (apm_socket *)SENT_PTR)
                mz_fail(line, "EndAccept succeeded without a socket");
            extras_add(acc, K_SOCKET);
        }
        break;
    case EK_SEND:
        st = mz_ret(E_socket_end_send, apm_socket_end_send((apm_socket *)owner, r, np), q, line);
        if (st == APM_OK && rec != NULL && n != rec->count)
            mz_fail(line, "EndSend reported %zu bytes sent of %zu", n, rec->count);
        break;
    case EK_RECEIVE:
        st = mz_ret(E_socket_end_receive, apm_socket_end_receive((apm_socket *)owner, r, np), q, line);
        if (st == APM_OK && rec != NULL && n > rec->count)
            mz_fail(line, "EndReceive reported %zu bytes received for %zu asked", n, rec->count);
        break;
    case EK_SENDFILE:
        st = mz_ret(E_socket_end_send_file, apm_socket_end_send_file((apm_socket *)owner, r), q, line);
        break;
    case EK_WRITE:
        st = mz_ret(E_stream_end_write, apm_stream_end_write((apm_stream *)owner, r), q, line);
        break;
    case EK_READ:
        st = mz_ret(E_stream_end_read, apm_stream_end_read((apm_stream *)owner, r, np), q, line);
        if (st == APM_OK && rec != NULL && n > rec->count)
            mz_fail(line, "EndRead reported %zu bytes read for %zu asked", n, rec->count);
        break;
    case EK_AUTH_C:
        st = mz_ret(E_ssl_stream_end_authenticate_as_client,
                    apm_ssl_stream_end_authenticate_as_client((apm_stream *)owner, r), q, line);
        break;
    case EK_AUTH_S:
        st = mz_ret(E_ssl_stream_end_authenticate_as_server,
                    apm_ssl_stream_end_authenticate_as_server((apm_stream *)owner, r), q, line);
        break;
    default:
        st = mz_ret(E_ssl_stream_end_shutdown, apm_ssl_stream_end_shutdown((apm_stream *)owner, r), q, line);
        break;
    }
    CHECK_OUT(st, n, SENT_SZ, line);
    return st;
}

static int is_end_rule_refusal(apm_status st)
{
    const char *m;
    if (st != APM_E_INVALID_OPERATION && st != APM_E_ARGUMENT)
        return 0;
    m = hx_last_message();
    if (st == APM_E_ARGUMENT)
        return strcmp(m, foreign_result_message) == 0;
    return strlen(m) >= sizeof end_twice_suffix - 1 &&
           strcmp(m + strlen(m) - (sizeof end_twice_suffix - 1), end_twice_suffix) == 0;
}

/* The first End of a claimed result, with its own object and End function. */
static void mz_end_correct(mz_rec *rec, apm_async_result *r, int line)
{
    int32_t c = SENT_I32;
    apm_status st = end_call(rec->end_kind, rec->owner, r, 0, Q_LIVE, rec, line);
    if (is_end_rule_refusal(st))
        mz_fail(line, "the first End of a result (end kind %d) was refused: %s \"%s\" (released by another End?)",
                rec->end_kind, hx_status_name(st), hx_last_message());
    if (CALLQ(async_result_is_completed, Q_STALE, apm_async_result_is_completed(r, &c)) != APM_E_ARGUMENT)
        mz_fail(line, "End (end kind %d, %s) did not release its result", rec->end_kind, hx_status_name(st));
    pthread_mutex_lock(&rec->mu);
    rec->phase = R_ENDED;
    if (rec->result == NULL)
        rec->result = r;
    pthread_mutex_unlock(&rec->mu);
    atomic_fetch_add(&g_ended, 1);
    rec_fin(rec);
}

/* End of kind ek with random arguments: the result's own End only when this thread could claim
 * it and it has completed; any other End must fail. */
static void a_end(int ek)
{
    mz_rpick rp = pick_result();
    mz_pick owner;
    int null_out = end_has_out(ek) && chance(8);
    int own;
    apm_status st;
    if (rp.s.rec != NULL && chance(45))
        owner = (mz_pick){rp.s.owner, Q_LIVE, rp.s.owner_kind};
    else
        owner = pick(end_class(ek));
    own = rp.s.rec != NULL && owner.h == rp.s.owner && ek == rp.s.end_kind && !null_out;
    if (own && rp.s.phase == R_LIVE) {
        int32_t c = SENT_I32;
        if (!claim_snap(&rp.s))
            return;
        if (CALL(async_result_is_completed, apm_async_result_is_completed(rp.s.result, &c)) == APM_OK && c == 1)
            mz_end_correct(rp.s.rec, rp.s.result, __LINE__);
        else
            unclaim(rp.s.rec);
        return;
    }
    st = end_call(ek, owner.h, (apm_async_result *)rp.h, null_out, Q_BAD, NULL, __LINE__);
    if (own && rp.q == Q_STALE && st != APM_E_INVALID_OPERATION && st != APM_E_OBJECT_DISPOSED)
        mz_fail(__LINE__, "a second End (end kind %d) returned %s", ek, hx_status_name(st));
}

/* Ends a live result that has completed (or is made to: cancelled, or waited for briefly). */
static void a_end_some(int in_cb)
{
    mz_snap s;
    int32_t c = SENT_I32, sig = SENT_I32;
    if (!live_result(&s) || !claim_snap(&s))
        return;
    if (CALL(async_result_is_completed, apm_async_result_is_completed(s.result, &c)) != APM_OK)
        mz_fail(__LINE__, "IsCompleted of a claimed live result failed");
    if (c != 1 && chance(30)) {
        apm_status st = CALL(async_result_cancel, apm_async_result_cancel(s.result));
        if (st == APM_OK && !in_cb) {
            if (CALL(async_result_wait, apm_async_result_wait(s.result, hx_wait_ms(), &sig)) != APM_OK || sig != 1)
                mz_fail(__LINE__, "a cancelled operation (end kind %d) did not complete", s.end_kind);
            c = 1;
        } else if (st != APM_OK && st != APM_E_NOT_SUPPORTED) {
            mz_fail(__LINE__, "cancel of a live result returned %s", hx_status_name(st));
        }
    } else if (c != 1 && chance(20)) {
        if (CALL(async_result_wait, apm_async_result_wait(s.result, (int32_t)below(5), &sig)) == APM_OK)
            c = sig;
    }
    if (c == 1)
        mz_end_correct(s.rec, s.result, __LINE__);
    else
        unclaim(s.rec);
}

/* ------------------------------------------------------------------ */
/* The stream defined in C                                             */
/* ------------------------------------------------------------------ */

typedef struct mz_custom {
    atomic_int closed;
    struct mz_custom *next;
} mz_custom;

static pthread_mutex_t g_custom_mu = PTHREAD_MUTEX_INITIALIZER;
static mz_custom *g_customs;

static mz_custom *custom_new(void)
{
    mz_custom *c = (mz_custom *)hx_xmalloc(sizeof *c);
    atomic_init(&c->closed, 0);
    pthread_mutex_lock(&g_custom_mu);
    c->next = g_customs;
    g_customs = c;
    pthread_mutex_unlock(&g_custom_mu);
    return c;
}

typedef struct mz_job {
    uint64_t token;
    uint8_t *buffer; /* NULL for a write */
    size_t count;
    apm_custom_complete_fn complete;
} mz_job;

#define MZ_JOBS 1024
static pthread_mutex_t g_jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_jobs_cv = PTHREAD_COND_INITIALIZER;
static mz_job g_jobs[MZ_JOBS];
static unsigned g_jobs_head, g_jobs_tail;
static atomic_long g_jobs_pending;
static int g_jobs_stop;

#define MZ_TOKENS 128
static _Atomic uint64_t g_stale_tokens[MZ_TOKENS];
static atomic_uint g_stale_tokens_next;

static const apm_status custom_errors[] = {APM_E_IO, APM_E_SOCKET, APM_E_OBJECT_DISPOSED, APM_E_TIMEOUT,
                                           APM_E_ARGUMENT, APM_E_INVALID_OPERATION, APM_E_NOT_SUPPORTED,
                                           5, -1000, INT32_MIN};

/* Completes a custom stream's operation: mostly well, sometimes with an error, an end of stream,
 * 0 bytes written or more bytes than asked (which the library must turn into APM_E_IO). */
static void custom_finish(mz_job *j)
{
    apm_status st = APM_OK, got;
    size_t n;
    unsigned r = below(100);
    if (r < 72) {
        n = chance(50) ? j->count : 1 + below_sz(j->count);
    } else if (r < 80) {
        n = 0;
    } else if (r < 86) {
        n = chance(30) ? SIZE_MAX : j->count + 1 + below(1000);
    } else {
        st = PICK(custom_errors);
        n = chance(50) ? 0 : (size_t)rnd();
    }
    if (j->buffer != NULL && st == APM_OK && n > 0)
        hx_pattern_fill(j->buffer, n < j->count ? n : j->count, rnd(), 0);
    atomic_fetch_add(&g_custom_ops, 1);
    got = j->complete(j->token, st, n);
    count_call(E_custom_stream_complete, got == APM_OK);
    if (got != APM_OK)
        mz_fail(__LINE__, "completing a pending custom-stream token returned %s", hx_status_name(got));
    if (chance(5)) {
        got = CALLQ(custom_stream_complete, Q_STALE, j->complete(j->token, APM_OK, 1));
        if (got != APM_E_ARGUMENT)
            mz_fail(__LINE__, "completing a token a second time returned %s", hx_status_name(got));
    }
    atomic_store(&g_stale_tokens[atomic_fetch_add(&g_stale_tokens_next, 1) % MZ_TOKENS], j->token);
    atomic_fetch_sub(&g_jobs_pending, 1);
}

static apm_status custom_begin(uint8_t *rbuf, const uint8_t *wbuf, size_t count, apm_custom_complete_fn complete,
                               uint64_t token)
{
    mz_job j;
    int queued = 0;
    if (count == 0)
        mz_fail(__LINE__, "a custom stream was asked for an operation of 0 bytes");
    if (complete == NULL)
        mz_fail(__LINE__, "a custom stream got no complete function");
    if (wbuf != NULL) { /* the bytes must be readable */
        volatile uint8_t x = (uint8_t)(wbuf[0] ^ wbuf[count - 1]);
        (void)x;
    } else {
        rbuf[0] = 0;
        rbuf[count - 1] = 0;
    }
    if (chance(8))
        return PICK(custom_errors);
    j = (mz_job){token, rbuf, count, complete};
    atomic_fetch_add(&g_jobs_pending, 1);
    if (chance(60)) {
        pthread_mutex_lock(&g_jobs_mu);
        if (g_jobs_tail - g_jobs_head < MZ_JOBS) {
            g_jobs[g_jobs_tail++ % MZ_JOBS] = j;
            queued = 1;
            pthread_cond_signal(&g_jobs_cv);
        }
        pthread_mutex_unlock(&g_jobs_mu);
    }
    if (!queued)
        custom_finish(&j); /* inside begin_read/begin_write */
    return APM_OK;
}

static apm_status cs_begin_read(void *ctx, uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                                uint64_t token)
{
    (void)ctx;
    return custom_begin(buffer, NULL, count, complete, token);
}

static apm_status cs_begin_write(void *ctx, const uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                                 uint64_t token)
{
    (void)ctx;
    return custom_begin(NULL, buffer, count, complete, token);
}

static void cs_close(void *ctx)
{
    mz_custom *c = (mz_custom *)ctx;
    if (atomic_exchange(&c->closed, 1) != 0)
        mz_fail(__LINE__, "a custom stream's close function was called twice");
}

static const apm_stream_vtable cs_vtable = {cs_begin_read, cs_begin_write, cs_close};
static const apm_stream_vtable cs_vtable_no_close = {cs_begin_read, cs_begin_write, NULL};
static const apm_stream_vtable cs_vtable_no_read = {NULL, cs_begin_write, cs_close};

static void *completer_main(void *arg)
{
    (void)arg;
    for (;;) {
        mz_job j;
        pthread_mutex_lock(&g_jobs_mu);
        while (g_jobs_head == g_jobs_tail && !g_jobs_stop)
            pthread_cond_wait(&g_jobs_cv, &g_jobs_mu);
        if (g_jobs_head == g_jobs_tail) {
            pthread_mutex_unlock(&g_jobs_mu);
            return NULL;
        }
        j = g_jobs[g_jobs_head++ % MZ_JOBS];
        pthread_mutex_unlock(&g_jobs_mu);
        if (chance(20))
            usleep(below(500));
        custom_finish(&j);
    }
}

/* ------------------------------------------------------------------ */
/* SslStream callbacks                                                 */
/* ------------------------------------------------------------------ */

static int32_t mz_accept_all(apm_stream *sender, apm_certificate *certificate, apm_certificate *const *chain,
                             size_t chain_len, int32_t errors, void *state)
{
    (void)sender, (void)certificate, (void)chain, (void)chain_len, (void)errors, (void)state;
    return 1;
}

static int32_t mz_validate(apm_stream *sender, apm_certificate *certificate, apm_certificate *const *chain,
                           size_t chain_len, int32_t errors, void *state)
{
    char text[256];
    size_t len = SENT_SZ;
    (void)state;
    atomic_fetch_add(&g_validations, 1);
    if (errors & ~7)
        mz_fail(__LINE__, "a validation callback got unknown SslPolicyErrors 0x%x", (unsigned)errors);
    if (certificate != NULL &&
        CALL(certificate_get_subject, apm_certificate_get_subject(certificate, text, sizeof text, &len)) != APM_OK)
        mz_fail(__LINE__, "the peer's certificate in the validation callback cannot be read");
    for (size_t i = 0; i < chain_len; i++) {
        if (chain[i] == NULL ||
            CALL(certificate_get_thumbprint, apm_certificate_get_thumbprint(chain[i], text, sizeof text, &len)) != APM_OK)
            mz_fail(__LINE__, "chain element %zu of the validation callback cannot be read", i);
    }
    if (chance(10)) {
        int32_t v = SENT_I32;
        apm_status st = CALL(ssl_stream_is_authenticated, apm_ssl_stream_is_authenticated(sender, &v));
        CHECK_OUT(st, v, SENT_I32, __LINE__);
    }
    if (chance(1) && !atomic_load(&g_stopping))
        CALL(stream_close, apm_stream_close(sender));
    return chance(85);
}

static apm_certificate *mz_select(apm_stream *sender, const char *target_host, apm_certificate *const *local,
                                  size_t local_len, apm_certificate *remote, const char *const *issuers,
                                  size_t issuers_len, void *state)
{
    mz_pick p;
    (void)sender, (void)remote, (void)state;
    if (target_host != NULL)
        (void)strlen(target_host);
    for (size_t i = 0; i < local_len; i++)
        if (local[i] == NULL)
            mz_fail(__LINE__, "the selection callback got a NULL local certificate");
    for (size_t i = 0; i < issuers_len; i++)
        if (issuers[i] == NULL || strlen(issuers[i]) > 100000)
            mz_fail(__LINE__, "the selection callback got a bad issuer name");
    if (chance(60))
        return g_master;
    if (chance(20))
        return NULL;
    p = pick(C_CERT);
    return (apm_certificate *)p.h;
}

/* ------------------------------------------------------------------ */
/* Making objects                                                      */
/* ------------------------------------------------------------------ */

static apm_socket *new_socket(int v6)
{
    apm_socket *s = NULL;
    if (CALL(socket_create, apm_socket_create(v6 ? APM_ADDRESS_FAMILY_INTER_NETWORK_V6 : APM_ADDRESS_FAMILY_INTER_NETWORK,
                                              APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP, &s)) != APM_OK)
        return NULL;
    return s;
}

static apm_socket *new_listener(int32_t *port)
{
    apm_socket *l = new_socket(0);
    char addr[64];
    if (l == NULL)
        return NULL;
    if (CALL(socket_bind, apm_socket_bind(l, "127.0.0.1", 0)) != APM_OK ||
        CALL(socket_listen, apm_socket_listen(l, 64)) != APM_OK ||
        CALL(socket_get_local_endpoint, apm_socket_get_local_endpoint(l, addr, sizeof addr, port)) != APM_OK) {
        CALL(socket_close, apm_socket_close(l));
        return NULL;
    }
    return l;
}

/* A connected pair; 0 when something failed (a concurrent shutdown, the watchdog). */
static int new_pair(apm_socket **client, apm_socket **server)
{
    int32_t port = 0;
    apm_socket *l = new_listener(&port), *c = NULL, *s = NULL;
    int ok = 0;
    if (l == NULL)
        return 0;
    c = new_socket(0);
    if (c != NULL && GUARDED(l, K_SOCKET, CALL(socket_connect, apm_socket_connect(c, "127.0.0.1", port))) == APM_OK &&
        GUARDED(l, K_SOCKET, CALL(socket_accept, apm_socket_accept(l, &s))) == APM_OK)
        ok = 1;
    CALL(socket_close, apm_socket_close(l));
    if (!ok) {
        if (c != NULL)
            CALL(socket_close, apm_socket_close(c));
        return 0;
    }
    *client = c;
    *server = s;
    return 1;
}

static void unit_add(mz_unit *u, void *h, int kind)
{
    if (h != NULL && u->n < MZ_UNIT_MAX)
        u->h[u->n++] = (mz_h){h, kind};
}

/* A setup Begin's result: waited for (the stream closed if it takes too long), then ended. */
static void settle(apm_stream *owner, apm_async_result *r, int ek)
{
    int32_t sig = 0;
    if (CALL(async_result_wait, apm_async_result_wait(r, g_setup_ms, &sig)) != APM_OK)
        mz_fail(__LINE__, "waiting for a setup handshake failed");
    if (sig != 1) {
        if (g_strict_shutdown)
            mz_fail(__LINE__, "a handshake on a private socket pair (end kind %d) did not complete in %d ms", ek,
                    g_setup_ms);
        if (env_long("APMNET_MISUSE_VERBOSE", 0))
            fprintf(stderr, "misuse: a setup handshake (end kind %d) did not complete in %d ms (%ld shutdowns so far)\n",
                    ek, g_setup_ms, atomic_load(&g_shutdowns));
        atomic_fetch_add(&g_stuck_handshakes, 1);
        CALL(stream_close, apm_stream_close(owner));
        if (CALL(async_result_wait, apm_async_result_wait(r, hx_wait_ms(), &sig)) != APM_OK || sig != 1)
            mz_fail(__LINE__, "closing an SslStream did not complete its handshake");
    }
    if (is_end_rule_refusal(end_call(ek, owner, r, 0, Q_LIVE, NULL, __LINE__)))
        mz_fail(__LINE__, "a setup handshake's End was refused");
}

static void make_ssl_pair(mz_unit *u, int authenticate)
{
    apm_socket *c = NULL, *s = NULL;
    apm_stream *nc = NULL, *ns = NULL, *sc = NULL, *ss = NULL;
    if (!new_pair(&c, &s))
        return;
    CALL(network_stream_create, apm_network_stream_create(c, 1, &nc));
    CALL(network_stream_create, apm_network_stream_create(s, 1, &ns));
    if (nc != NULL)
        CALL(ssl_stream_create, apm_ssl_stream_create(nc, 0, &sc));
    if (ns != NULL)
        CALL(ssl_stream_create, apm_ssl_stream_create(ns, 0, &ss));
    unit_add(u, sc, K_SSL);
    unit_add(u, ss, K_SSL);
    unit_add(u, nc, K_NSTREAM);
    unit_add(u, ns, K_NSTREAM);
    unit_add(u, c, K_SOCKET);
    unit_add(u, s, K_SOCKET);
    if (sc == NULL || ss == NULL)
        return;
    if (authenticate) {
        apm_async_result *rc = NULL, *rs = NULL;
        apm_transport_context *tc = NULL;
        apm_certificate *remote = NULL;
        CALL(ssl_stream_set_validation_callback, apm_ssl_stream_set_validation_callback(sc, mz_accept_all, NULL));
        if (CALL(ssl_stream_begin_authenticate_as_server,
                 apm_ssl_stream_begin_authenticate_as_server(ss, g_master, 0, 0, 0, NULL, NULL, &rs)) != APM_OK)
            rs = NULL;
        if (CALL(ssl_stream_begin_authenticate_as_client,
                 apm_ssl_stream_begin_authenticate_as_client(sc, "localhost", NULL, 0, 0, NULL, NULL, &rc)) != APM_OK)
            rc = NULL;
        if (rs != NULL)
            settle(ss, rs, EK_AUTH_S);
        if (rc != NULL)
            settle(sc, rc, EK_AUTH_C);
        if (CALL(ssl_stream_get_transport_context, apm_ssl_stream_get_transport_context(sc, &tc)) == APM_OK)
            unit_add(u, tc, K_TCTX);
        if (CALL(ssl_stream_get_remote_certificate, apm_ssl_stream_get_remote_certificate(sc, &remote)) == APM_OK)
            unit_add(u, remote, K_CERT);
    } else if (chance(60)) {
        CALL(ssl_stream_set_validation_callback, apm_ssl_stream_set_validation_callback(sc, mz_validate, NULL));
    }
}

static void unit_build(mz_unit *u, int type)
{
    apm_socket *a = NULL, *b = NULL;
    apm_stream *x = NULL, *y = NULL;
    apm_certificate *c = NULL;
    memset(u, 0, sizeof *u);
    switch (type) {
    case U_LISTENER: {
        int32_t port;
        unit_add(u, new_listener(&port), K_SOCKET);
        break;
    }
    case U_FRESH:
        unit_add(u, new_socket(chance(20)), K_SOCKET);
        break;
    case U_SOCKPAIR:
        if (new_pair(&a, &b)) {
            unit_add(u, a, K_SOCKET);
            unit_add(u, b, K_SOCKET);
        }
        break;
    case U_NSPAIR:
        if (new_pair(&a, &b)) {
            int owns = chance(70);
            static const int32_t access[] = {APM_FILE_ACCESS_READ_WRITE, APM_FILE_ACCESS_READ_WRITE,
                                             APM_FILE_ACCESS_READ, APM_FILE_ACCESS_WRITE};
            CALL(network_stream_create_with_access, apm_network_stream_create_with_access(a, PICK(access), owns, &x));
            CALL(network_stream_create_with_access, apm_network_stream_create_with_access(b, PICK(access), owns, &y));
            unit_add(u, x, K_NSTREAM);
            unit_add(u, y, K_NSTREAM);
            unit_add(u, a, K_SOCKET);
            unit_add(u, b, K_SOCKET);
        }
        break;
    case U_SSL_AUTH:
        make_ssl_pair(u, 1);
        break;
    case U_SSL_FRESH:
        make_ssl_pair(u, 0);
        break;
    case U_CUSTOM:
        CALL(stream_create_custom, apm_stream_create_custom(chance(80) ? &cs_vtable : &cs_vtable_no_close,
                                                           custom_new(), &x));
        unit_add(u, x, K_CUSTOM);
        break;
    case U_SSL_CUSTOM:
        CALL(stream_create_custom, apm_stream_create_custom(&cs_vtable, custom_new(), &x));
        if (x != NULL) {
            int leave_open = chance(50);
            CALL(ssl_stream_create, apm_ssl_stream_create(x, leave_open, &y));
            unit_add(u, y, K_SSL);
            unit_add(u, x, K_CUSTOM);
        }
        break;
    default:
        CALL(certificate_load_pem, apm_certificate_load_pem((const uint8_t *)hx_test_cert_pem, strlen(hx_test_cert_pem),
                                                             (const uint8_t *)hx_test_key_pem,
                                                             strlen(hx_test_key_pem), &c));
        unit_add(u, c, K_CERT);
        c = NULL;
        CALL(certificate_load_der, apm_certificate_load_der(g_der, g_der_len, &c));
        unit_add(u, c, K_CERT);
        c = NULL;
        CALL(certificate_load_pem, apm_certificate_load_pem((const uint8_t *)hx_test_cert_pem,
                                                             strlen(hx_test_cert_pem), NULL, 0, &c));
        unit_add(u, c, K_CERT);
        break;
    }
}

static void a_recycle(int in_cb)
{
    int i = (int)below(MZ_UNITS);
    mz_unit u;
    (void)in_cb;
    if (utype_of(i) == U_LISTENER && keep_listeners() && g_units_h0(i) != NULL)
        return;
    u = unit_take(i);
    if (u.n > 0 && chance(20)) { /* the wrong close function first: refused, nothing closed */
        mz_h x = u.h[0];
        apm_status st;
        if (x.kind == K_SOCKET)
            st = CALLQ(stream_close, Q_BAD, apm_stream_close((apm_stream *)x.h));
        else if (x.kind == K_CERT)
            st = CALLQ(transport_context_close, Q_BAD, apm_transport_context_close((apm_transport_context *)x.h));
        else if (x.kind == K_TCTX)
            st = CALLQ(certificate_close, Q_BAD, apm_certificate_close((apm_certificate *)x.h));
        else
            st = CALLQ(socket_close, Q_BAD, apm_socket_close((apm_socket *)x.h));
        (void)st;
    }
    unit_close(&u);
    if (atomic_load(&g_stopping))
        return;
    unit_build(&u, utype_of(i));
    unit_install(i, &u);
}

/* An action that is fn(arg). */
#define ACTION_OF(name, fn, arg)                                                             \
    static void a_##name(int in_cb)                                                          \
    {                                                                                        \
        (void)in_cb;                                                                         \
        fn(arg);                                                                             \
    }

/* ------------------------------------------------------------------ */
/* Actions: Begin                                                      */
/* ------------------------------------------------------------------ */

/* Declares rec (the record), r and rp (&r or, sometimes, NULL) for a Begin on `owner`. */
#define BEGIN_PREP(owner, ek, count)                                                         \
    mz_rec *rec = rec_get((owner).h, (owner).kind, (ek), (count));                           \
    apm_async_result *r = (apm_async_result *)SENT_PTR;                                      \
    apm_async_result **rp = chance(4) ? NULL : &r;                                           \
    if (rec == NULL)                                                                         \
        return
#define RQ(q) (rp == NULL ? Q_BAD : (q))

static void a_socket_begin_accept(int in_cb)
{
    mz_pick s = pick_in(U_LISTENER, C_SOCKET);
    BEGIN_PREP(s, EK_ACCEPT, 0);
    (void)in_cb;
    DO_BEGIN(socket_begin_accept, RQ(s.q), rec, r,
             apm_socket_begin_accept((apm_socket *)s.h, rec_cb(rec), rec, rp));
    if (chance(60)) { /* a connection for it, mostly */
        int32_t port = listener_unit_port(s.h);
        if (port != 0)
            raw_connect(port);
    }
}

static void a_socket_begin_connect(int in_cb)
{
    mz_pick s = chance(70) ? pick_in(U_FRESH, C_SOCKET) : pick(C_SOCKET);
    const char *host = pick_host();
    int32_t port = pick_port();
    BEGIN_PREP(s, EK_CONNECT, 0);
    (void)in_cb;
    DO_BEGIN(socket_begin_connect, RQ(s.q), rec, r,
             apm_socket_begin_connect((apm_socket *)s.h, host, port, rec_cb(rec), rec, rp));
}

/* BeginSend, BeginReceive, BeginWrite, BeginRead: a range of the shared buffers. */
static void begin_transfer(int ek)
{
    int reading = ek == EK_RECEIVE || ek == EK_READ;
    mz_pick s = pick(ek == EK_SEND || ek == EK_RECEIVE ? C_SOCKET : C_STREAM);
    apm_socket *so = (apm_socket *)s.h;
    apm_stream *st = (apm_stream *)s.h;
    uint8_t *p;
    size_t len, off, cnt;
    pick_buf(reading ? g_rbuf : g_wbuf, MZ_BUF, &p, &len);
    pick_range(len, &off, &cnt);
    {
        BEGIN_PREP(s, ek, cnt);
        switch (ek) {
        case EK_SEND:
            DO_BEGIN(socket_begin_send, RQ(s.q), rec, r,
                     apm_socket_begin_send(so, p, len, off, cnt, rec_cb(rec), rec, rp));
            break;
        case EK_RECEIVE:
            DO_BEGIN(socket_begin_receive, RQ(s.q), rec, r,
                     apm_socket_begin_receive(so, p, len, off, cnt, rec_cb(rec), rec, rp));
            break;
        case EK_WRITE:
            DO_BEGIN(stream_begin_write, RQ(s.q), rec, r,
                     apm_stream_begin_write(st, p, len, off, cnt, rec_cb(rec), rec, rp));
            break;
        default:
            DO_BEGIN(stream_begin_read, RQ(s.q), rec, r,
                     apm_stream_begin_read(st, p, len, off, cnt, rec_cb(rec), rec, rp));
            break;
        }
    }
}

static int32_t pick_send_file_flags(void)
{
    static const int32_t v[] = {0, 0, 0, APM_TRANSMIT_FILE_DISCONNECT,
                                APM_TRANSMIT_FILE_DISCONNECT | APM_TRANSMIT_FILE_REUSE_SOCKET,
                                APM_TRANSMIT_FILE_REUSE_SOCKET, APM_TRANSMIT_FILE_WRITE_BEHIND,
                                APM_TRANSMIT_FILE_USE_SYSTEM_THREAD, APM_TRANSMIT_FILE_USE_KERNEL_APC, 8, 64,
                                -1, INT32_MIN};
    return PICK(v);
}

/* Pre- and post-buffers of a send file: NULL (any length) or a real one. */
static void pick_pre(const uint8_t **p, size_t *len)
{
    if (chance(40)) {
        *p = NULL;
        *len = chance(50) ? 0 : pick_size(100);
    } else {
        *p = g_wbuf + below(4096);
        *len = below(4096);
    }
}

static void begin_send_file(int with_progress)
{
    mz_pick s = pick(C_SOCKET);
    const char *path = chance(40) ? g_file : pick_path();
    const uint8_t *pre, *post;
    size_t pre_len, post_len;
    int32_t flags = pick_send_file_flags();
    pick_pre(&pre, &pre_len);
    pick_pre(&post, &post_len);
    {
        BEGIN_PREP(s, EK_SENDFILE, 0);
        if (with_progress)
            DO_BEGIN(socket_begin_send_file_with_progress, RQ(s.q), rec, r,
                     apm_socket_begin_send_file_with_progress((apm_socket *)s.h, path, pre, pre_len, post,
                                                              post_len, flags, chance(80) ? mz_progress : NULL,
                                                              rec_cb(rec), rec, rp));
        else
            DO_BEGIN(socket_begin_send_file, RQ(s.q), rec, r,
                     apm_socket_begin_send_file((apm_socket *)s.h, path, pre, pre_len, post, post_len, flags,
                                                rec_cb(rec), rec, rp));
    }
}

static const char *pick_target_host(void)
{
    static const char *const v[] = {"localhost", "localhost", NULL, "", "127.0.0.1", "\xff\xfe", "example.com"};
    return PICK(v);
}

static void begin_auth_client(mz_pick s, const char *host, int32_t protocols)
{
    mz_pick cert = pick_cert_arg();
    int32_t revocation = chance(10);
    BEGIN_PREP(s, EK_AUTH_C, 0);
    DO_BEGIN(ssl_stream_begin_authenticate_as_client, RQ(qworst(s.q, cert.q)), rec, r,
             apm_ssl_stream_begin_authenticate_as_client((apm_stream *)s.h, host, (apm_certificate *)cert.h,
                                                         protocols, revocation, rec_cb(rec), rec, rp));
}

static void begin_auth_server(mz_pick s, mz_pick cert, int32_t protocols)
{
    int32_t require = chance(20), revocation = chance(10);
    BEGIN_PREP(s, EK_AUTH_S, 0);
    DO_BEGIN(ssl_stream_begin_authenticate_as_server, RQ(qworst(s.q, cert.q)), rec, r,
             apm_ssl_stream_begin_authenticate_as_server((apm_stream *)s.h, (apm_certificate *)cert.h, require,
                                                         protocols, revocation, rec_cb(rec), rec, rp));
}

static void a_ssl_stream_begin_authenticate_as_client(int in_cb)
{
    (void)in_cb;
    begin_auth_client(pick(C_SSL), pick_target_host(), pick_protocols());
}

static void a_ssl_stream_begin_authenticate_as_server(int in_cb)
{
    (void)in_cb;
    begin_auth_server(pick(C_SSL), pick_cert_arg(), pick_protocols());
}

/* Both ends of a fresh SslStream pair authenticate, which may then succeed: both with Begin
 * (blocking 0), or one side blocking (1: the client, 2: the server) while the other has begun. */
static void pair_handshake(int blocking)
{
    mz_pick c = {NULL, Q_LIVE, K_SSL}, s = {NULL, Q_LIVE, K_SSL}, cert = {g_master, Q_LIVE, K_CERT};
    mz_unit *u = &g_units[(int)below(3) * U_TYPES + U_SSL_FRESH];
    const char *host = chance(50) ? "localhost" : NULL;
    pthread_mutex_lock(&g_pool_mu);
    if (u->n >= 2) {
        c.h = u->h[0].h;
        s.h = u->h[1].h;
    }
    pthread_mutex_unlock(&g_pool_mu);
    if (c.h == NULL)
        return;
    if (blocking != 2)
        begin_auth_server(s, cert, 0);
    if (blocking == 0)
        begin_auth_client(c, host, 0);
    else if (blocking == 1)
        GUARDED(c.h, K_SSL, CALL(ssl_stream_authenticate_as_client,
                                 apm_ssl_stream_authenticate_as_client((apm_stream *)c.h, host, NULL, 0, 0)));
    if (blocking == 2) {
        begin_auth_client(c, host, 0);
        GUARDED(s.h, K_SSL, CALL(ssl_stream_authenticate_as_server,
                                 apm_ssl_stream_authenticate_as_server((apm_stream *)s.h, g_master, 0, 0, 0)));
    }
}
ACTION_OF(pair_handshake, pair_handshake, 0)
ACTION_OF(pair_handshake_blocking, pair_handshake, 1 + (int)below(2))

static void a_ssl_stream_begin_shutdown(int in_cb)
{
    mz_pick s = pick(C_SSL);
    BEGIN_PREP(s, EK_SHUTDOWN, 0);
    (void)in_cb;
    DO_BEGIN(ssl_stream_begin_shutdown, RQ(s.q), rec, r,
             apm_ssl_stream_begin_shutdown((apm_stream *)s.h, rec_cb(rec), rec, rp));
}

/* ------------------------------------------------------------------ */
/* Actions: End, IAsyncResult                                          */
/* ------------------------------------------------------------------ */

ACTION_OF(socket_begin_send, begin_transfer, EK_SEND)
ACTION_OF(socket_begin_receive, begin_transfer, EK_RECEIVE)
ACTION_OF(stream_begin_write, begin_transfer, EK_WRITE)
ACTION_OF(stream_begin_read, begin_transfer, EK_READ)
ACTION_OF(socket_begin_send_file, begin_send_file, 0)
ACTION_OF(socket_begin_send_file_with_progress, begin_send_file, 1)
ACTION_OF(socket_end_accept, a_end, EK_ACCEPT)
ACTION_OF(socket_end_connect, a_end, EK_CONNECT)
ACTION_OF(socket_end_send, a_end, EK_SEND)
ACTION_OF(socket_end_receive, a_end, EK_RECEIVE)
ACTION_OF(socket_end_send_file, a_end, EK_SENDFILE)
ACTION_OF(stream_end_write, a_end, EK_WRITE)
ACTION_OF(stream_end_read, a_end, EK_READ)
ACTION_OF(ssl_stream_end_authenticate_as_client, a_end, EK_AUTH_C)
ACTION_OF(ssl_stream_end_authenticate_as_server, a_end, EK_AUTH_S)
ACTION_OF(ssl_stream_end_shutdown, a_end, EK_SHUTDOWN)

static void a_async_result_getters(int in_cb)
{
    mz_rpick p = pick_result();
    int32_t v = SENT_I32, *vp = OUTP(&v);
    void *state = SENT_PTR, **sp = OUTP(&state);
    int q = vp == NULL ? Q_BAD : p.q;
    apm_status st;
    (void)in_cb;
    switch (below(3)) {
    case 0:
        st = CALLQ(async_result_is_completed, q, apm_async_result_is_completed((apm_async_result *)p.h, vp));
        break;
    case 1:
        st = CALLQ(async_result_completed_synchronously, q,
                   apm_async_result_completed_synchronously((apm_async_result *)p.h, vp));
        break;
    default:
        st = CALLQ(async_result_state, sp == NULL ? Q_BAD : p.q, apm_async_result_state((apm_async_result *)p.h, sp));
        CHECK_OUT(st, state, SENT_PTR, __LINE__);
        if (st == APM_OK && p.s.rec != NULL && state != p.s.rec)
            mz_fail(__LINE__, "AsyncState is not the state given to Begin");
        return;
    }
    CHECK_OUT(st, v, SENT_I32, __LINE__);
    if (st == APM_OK && v != 0 && v != 1)
        mz_fail(__LINE__, "an IAsyncResult flag is %d", (int)v);
}

static void a_async_result_wait(int in_cb)
{
    mz_rpick p = pick_result();
    static const int32_t timeouts[] = {0, 0, 1, 3, -2, INT32_MIN};
    int32_t sig = SENT_I32, *sp = OUTP(&sig), c = 0, timeout = PICK(timeouts);
    apm_status st;
    (void)in_cb;
    /* -1 (forever) only for a result seen completed. */
    if (p.q == Q_LIVE && chance(30) &&
        CALL(async_result_is_completed, apm_async_result_is_completed((apm_async_result *)p.h, &c)) == APM_OK && c == 1)
        timeout = -1;
    st = CALLQ(async_result_wait, sp == NULL ? Q_BAD : p.q, apm_async_result_wait((apm_async_result *)p.h, timeout, sp));
    CHECK_OUT(st, sig, SENT_I32, __LINE__);
    if (st == APM_OK && timeout == -1 && sig != 1)
        mz_fail(__LINE__, "a wait without timeout returned unsignaled");
}

static void a_async_result_cancel(int in_cb)
{
    mz_rpick p = pick_result();
    apm_status st;
    (void)in_cb;
    st = CALLQ(async_result_cancel, p.q, apm_async_result_cancel((apm_async_result *)p.h));
    if (p.q == Q_STALE && st != APM_E_ARGUMENT)
        mz_fail(__LINE__, "cancel of an ended result returned %s", hx_status_name(st));
}

static void a_end_some_action(int in_cb)
{
    a_end_some(in_cb);
}

/* ------------------------------------------------------------------ */
/* Actions: sockets                                                    */
/* ------------------------------------------------------------------ */

static void a_socket_create(int in_cb)
{
    static const int32_t af[] = {APM_ADDRESS_FAMILY_INTER_NETWORK, APM_ADDRESS_FAMILY_INTER_NETWORK_V6, 0, -1, 1, 99};
    static const int32_t type[] = {APM_SOCKET_TYPE_STREAM, APM_SOCKET_TYPE_DGRAM, 0, 3, -1};
    static const int32_t proto[] = {APM_PROTOCOL_TYPE_TCP, 0, 17, -1, 255};
    apm_socket *s = (apm_socket *)SENT_PTR, **sp = OUTP(&s);
    int valid = chance(50);
    apm_status st;
    (void)in_cb;
    st = CALLQ(socket_create, sp == NULL ? Q_BAD : Q_LIVE,
               apm_socket_create(valid ? APM_ADDRESS_FAMILY_INTER_NETWORK : PICK(af),
                                 valid ? APM_SOCKET_TYPE_STREAM : PICK(type),
                                 valid ? APM_PROTOCOL_TYPE_TCP : PICK(proto), sp));
    CHECK_OUT(st, s, (apm_socket *)SENT_PTR, __LINE__);
    if (st == APM_OK)
        extras_add(s, K_SOCKET);
}

static void a_socket_bind(int in_cb)
{
    static const char *const addrs[] = {"127.0.0.1", "127.0.0.1", "::1", "0.0.0.0", "::", NULL, "\xff",
                                        "256.1.1.1", "1.2.3.4", "localhost", ""};
    mz_pick s = chance(50) ? pick_in(U_FRESH, C_SOCKET) : pick(C_SOCKET);
    int32_t port = chance(70) ? 0 : chance(50) ? listener_port() : pick_port();
    (void)in_cb;
    if (port > 0 && port != listener_port() && port != 1)
        port = 0; /* never a free port another test may be about to use */
    CALLQ(socket_bind, s.q, apm_socket_bind((apm_socket *)s.h, PICK(addrs), port));
}

typedef apm_status (*sock_get_fn)(apm_socket *, int32_t *);
typedef apm_status (*sock_set_fn)(apm_socket *, int32_t);

static void sock_get(int id, sock_get_fn fn, int boolean)
{
    mz_pick s = pick(C_SOCKET);
    int32_t v = SENT_I32, *vp = OUTP(&v);
    apm_status st = mz_ret(id, fn((apm_socket *)s.h, vp), vp == NULL ? Q_BAD : s.q, __LINE__);
    CHECK_OUT(st, v, SENT_I32, __LINE__);
    if (st == APM_OK && boolean && v != 0 && v != 1)
        mz_fail(__LINE__, "%s wrote %d", mz_names[id], (int)v);
}

static void sock_set(int id, sock_set_fn fn, int32_t value)
{
    mz_pick s = pick(C_SOCKET);
    mz_ret(id, fn((apm_socket *)s.h, value), s.q, __LINE__);
}

#define SOCK_GET(name, boolean)                                                              \
    static void a_##name(int in_cb)                                                          \
    {                                                                                        \
        (void)in_cb;                                                                         \
        sock_get(E_##name, apm_##name, boolean);                                             \
    }
#define SOCK_SET(name, value)                                                                \
    static void a_##name(int in_cb)                                                          \
    {                                                                                        \
        (void)in_cb;                                                                         \
        sock_set(E_##name, apm_##name, value);                                               \
    }

static int32_t pick_timeout(void)
{
    static const int32_t v[] = {0, -1, 1, 5, 20, 100, -2, INT32_MIN, INT32_MAX};
    return PICK(v);
}

static int32_t pick_buffer_size(void)
{
    static const int32_t v[] = {0, 1, 4096, 65536, 1 << 20, -1, INT32_MAX, INT32_MIN};
    return PICK(v);
}

static int32_t pick_backlog(void)
{
    static const int32_t v[] = {0, 1, 16, 128, -1, INT32_MAX, INT32_MIN};
    return PICK(v);
}

static int32_t pick_how(void)
{
    static const int32_t v[] = {APM_SOCKET_SHUTDOWN_RECEIVE, APM_SOCKET_SHUTDOWN_SEND, APM_SOCKET_SHUTDOWN_BOTH, 3, -1};
    return PICK(v);
}

SOCK_GET(socket_get_connected, 1)
SOCK_GET(socket_get_available, 0)
SOCK_GET(socket_get_no_delay, 1)
SOCK_GET(socket_get_send_buffer_size, 0)
SOCK_GET(socket_get_receive_buffer_size, 0)
SOCK_GET(socket_get_send_timeout, 0)
SOCK_GET(socket_get_receive_timeout, 0)
SOCK_SET(socket_set_no_delay, pick_i32())
SOCK_SET(socket_set_send_buffer_size, pick_buffer_size())
SOCK_SET(socket_set_receive_buffer_size, pick_buffer_size())
SOCK_SET(socket_set_send_timeout, pick_timeout())
SOCK_SET(socket_set_receive_timeout, pick_timeout())
SOCK_SET(socket_listen, pick_backlog())
SOCK_SET(socket_shutdown, pick_how())

static void a_socket_set_linger(int in_cb)
{
    /* Seconds of lingering make close block: 0 (reset) mostly, 1 rarely, then invalid values. */
    static const int32_t bad[] = {-1, 65536, INT32_MAX, INT32_MIN};
    mz_pick s = pick(C_SOCKET);
    int32_t seconds = chance(80) ? 0 : chance(10) ? 1 : PICK(bad);
    (void)in_cb;
    CALLQ(socket_set_linger, s.q, apm_socket_set_linger((apm_socket *)s.h, pick_i32(), seconds));
}

static void a_socket_get_linger(int in_cb)
{
    mz_pick s = pick(C_SOCKET);
    int32_t e = SENT_I32, secs = SENT_I32, *ep = OUTP(&e), *sp = OUTP(&secs);
    apm_status st;
    (void)in_cb;
    st = CALLQ(socket_get_linger, (ep == NULL || sp == NULL) ? Q_BAD : s.q,
               apm_socket_get_linger((apm_socket *)s.h, ep, sp));
    CHECK_OUT(st, e, SENT_I32, __LINE__);
    CHECK_OUT(st, secs, SENT_I32, __LINE__);
}

static void endpoint(int remote)
{
    mz_pick s = pick(C_SOCKET);
    char addr[64], *ap;
    size_t len;
    int32_t port = SENT_I32, *pp = OUTP(&port);
    apm_status st;
    pick_text_buf(addr, sizeof addr, &ap, &len);
    /* The address follows the house rule for text: NULL is fine with a zero length. */
    if (remote)
        st = CALLQ(socket_get_remote_endpoint, ((ap == NULL && len > 0) || pp == NULL) ? Q_BAD : s.q,
                   apm_socket_get_remote_endpoint((apm_socket *)s.h, ap, len, pp));
    else
        st = CALLQ(socket_get_local_endpoint, ((ap == NULL && len > 0) || pp == NULL) ? Q_BAD : s.q,
                   apm_socket_get_local_endpoint((apm_socket *)s.h, ap, len, pp));
    CHECK_OUT(st, port, SENT_I32, __LINE__);
    check_text(st, ap, len, __LINE__);
    if (st == APM_OK && (port < 0 || port > 65535))
        mz_fail(__LINE__, "an endpoint has port %d", (int)port);
}

ACTION_OF(socket_get_local_endpoint, endpoint, 0)

ACTION_OF(socket_get_remote_endpoint, endpoint, 1)

static void a_socket_close(int in_cb)
{
    mz_pick s = pick(C_SOCKET);
    (void)in_cb;
    if (keep_listeners() && is_unit_listener(s.h))
        return;
    if (CALLQ(socket_close, s.q, apm_socket_close((apm_socket *)s.h)) == APM_OK && s.kind == K_SOCKET)
        stale_push(s.h, K_SOCKET);
}

/* Blocking socket calls, guarded by the watchdog. */
static void a_socket_accept(int in_cb)
{
    mz_pick l = pick_in(U_LISTENER, C_SOCKET);
    apm_socket *a = (apm_socket *)SENT_PTR, **ap = OUTP(&a);
    int32_t port = keep_listeners() ? listener_unit_port(l.h) : 0;
    apm_status st;
    (void)in_cb;
    if (port != 0) {
        raw_connect(port);
    } else if (chance(60)) { /* someone to accept */
        apm_socket *c = new_socket(0);
        int32_t to = listener_port();
        if (c != NULL && to != 0)
            GUARDED(c, K_SOCKET, CALL(socket_connect, apm_socket_connect(c, "127.0.0.1", to)));
        extras_add(c, K_SOCKET);
    }
    st = GUARDED(l.h, l.kind, CALLQ(socket_accept, ap == NULL ? Q_BAD : l.q, apm_socket_accept((apm_socket *)l.h, ap)));
    CHECK_OUT(st, a, (apm_socket *)SENT_PTR, __LINE__);
    if (st == APM_OK)
        extras_add(a, K_SOCKET);
}

static void a_socket_connect(int in_cb)
{
    mz_pick s = chance(70) ? pick_in(U_FRESH, C_SOCKET) : pick(C_SOCKET);
    const char *host = pick_host();
    int32_t port = pick_port();
    (void)in_cb;
    GUARDED(s.h, s.kind, CALLQ(socket_connect, s.q, apm_socket_connect((apm_socket *)s.h, host, port)));
}

/* Send, Receive, Write, Read, blocking (guarded): a range of the shared buffers. */
static void blocking_transfer(int ek)
{
    int reading = ek == EK_RECEIVE || ek == EK_READ;
    mz_pick s = pick(ek == EK_SEND || ek == EK_RECEIVE ? C_SOCKET : C_STREAM);
    apm_socket *so = (apm_socket *)s.h;
    apm_stream *st = (apm_stream *)s.h;
    uint8_t *p;
    size_t len, off, cnt, n = SENT_SZ, *np = OUTP(&n);
    int q = (np == NULL && ek != EK_WRITE) ? Q_BAD : s.q;
    apm_status rc;
    pick_buf(reading ? g_rbuf : g_wbuf, MZ_BUF, &p, &len);
    pick_range(len, &off, &cnt);
    switch (ek) {
    case EK_SEND:
        rc = GUARDED(s.h, s.kind, CALLQ(socket_send, q, apm_socket_send(so, p, len, off, cnt, np)));
        break;
    case EK_RECEIVE:
        rc = GUARDED(s.h, s.kind, CALLQ(socket_receive, q, apm_socket_receive(so, p, len, off, cnt, np)));
        break;
    case EK_WRITE:
        GUARDED(s.h, s.kind, CALLQ(stream_write, q, apm_stream_write(st, p, len, off, cnt)));
        return;
    default:
        rc = GUARDED(s.h, s.kind, CALLQ(stream_read, q, apm_stream_read(st, p, len, off, cnt, np)));
        break;
    }
    CHECK_OUT(rc, n, SENT_SZ, __LINE__);
    if (rc == APM_OK && (reading ? n > cnt : n != cnt))
        mz_fail(__LINE__, "a blocking transfer (end kind %d) reported %zu bytes for %zu", ek, n, cnt);
}
ACTION_OF(socket_send, blocking_transfer, EK_SEND)
ACTION_OF(socket_receive, blocking_transfer, EK_RECEIVE)
ACTION_OF(stream_write, blocking_transfer, EK_WRITE)
ACTION_OF(stream_read, blocking_transfer, EK_READ)

static void a_socket_send_file(int in_cb)
{
    mz_pick s = pick(C_SOCKET);
    const uint8_t *pre, *post;
    size_t pre_len, post_len;
    const char *path = chance(40) ? g_file : pick_path();
    int32_t flags = pick_send_file_flags();
    (void)in_cb;
    pick_pre(&pre, &pre_len);
    pick_pre(&post, &post_len);
    GUARDED(s.h, s.kind, CALLQ(socket_send_file, s.q,
                               apm_socket_send_file((apm_socket *)s.h, path, pre, pre_len, post, post_len, flags)));
}

/* ------------------------------------------------------------------ */
/* Actions: streams                                                    */
/* ------------------------------------------------------------------ */

static void a_network_stream_create(int in_cb)
{
    static const int32_t access[] = {APM_FILE_ACCESS_READ, APM_FILE_ACCESS_WRITE, APM_FILE_ACCESS_READ_WRITE, 0, 4, -1};
    mz_pick s = pick(C_SOCKET);
    apm_stream *st_out = (apm_stream *)SENT_PTR, **op = OUTP(&st_out);
    int32_t owns = chance(50) ? 0 : chance(90) ? 1 : 7;
    int q = op == NULL ? Q_BAD : s.q;
    apm_status st;
    (void)in_cb;
    if (chance(50))
        st = CALLQ(network_stream_create, q, apm_network_stream_create((apm_socket *)s.h, owns, op));
    else
        st = CALLQ(network_stream_create_with_access, q,
                   apm_network_stream_create_with_access((apm_socket *)s.h, PICK(access), owns, op));
    CHECK_OUT(st, st_out, (apm_stream *)SENT_PTR, __LINE__);
    if (st == APM_OK)
        extras_add(st_out, K_NSTREAM);
}

static void a_stream_create_custom(int in_cb)
{
    const apm_stream_vtable *const tables[] = {&cs_vtable, &cs_vtable, &cs_vtable_no_close, &cs_vtable_no_read, NULL};
    const apm_stream_vtable *v = PICK(tables);
    apm_stream *s = (apm_stream *)SENT_PTR, **sp = OUTP(&s);
    int q = (sp == NULL || v == NULL || v == &cs_vtable_no_read) ? Q_BAD : Q_LIVE;
    apm_status st;
    (void)in_cb;
    st = CALLQ(stream_create_custom, q, apm_stream_create_custom(v, custom_new(), sp));
    CHECK_OUT(st, s, (apm_stream *)SENT_PTR, __LINE__);
    if (st == APM_OK)
        extras_add(s, K_CUSTOM);
}

static void a_custom_stream_complete(int in_cb)
{
    uint64_t token;
    apm_status st;
    (void)in_cb;
    switch (below(5)) {
    case 0:
    case 1:
        token = atomic_load(&g_stale_tokens[below(MZ_TOKENS)]);
        break;
    case 2:
        token = rnd() | 0x80000000ull;
        if ((token >> 56) == 1)
            token ^= 1ull << 57;
        break;
    case 3: {
        static const uint64_t v[] = {0, UINT64_MAX, 1, 0x0100000000000000ull, 0x01000000ffffffffull};
        token = PICK(v);
        break;
    }
    default: {
        /* A live handle of another kind: only in strict mode, since the token table does not
         * check the kind byte and such a value may name a pending operation. */
        mz_pick p = pick(C_STREAM);
        if (!g_strict_kinds || p.q != Q_LIVE)
            return;
        token = (uint64_t)(uintptr_t)p.h;
        break;
    }
    }
    st = CALLQ(custom_stream_complete, Q_BAD, apm_custom_stream_complete(token, PICK(custom_errors), pick_size(100)));
    if (st != APM_E_ARGUMENT)
        mz_fail(__LINE__, "apm_custom_stream_complete of a token that is not pending (%#llx) returned %s",
                (unsigned long long)token, hx_status_name(st));
}


static void a_stream_can(int in_cb)
{
    mz_pick s = pick(C_STREAM);
    int32_t v = SENT_I32, *vp = OUTP(&v);
    int q = vp == NULL ? Q_BAD : s.q;
    apm_status st;
    (void)in_cb;
    if (chance(50))
        st = CALLQ(stream_can_read, q, apm_stream_can_read((apm_stream *)s.h, vp));
    else
        st = CALLQ(stream_can_write, q, apm_stream_can_write((apm_stream *)s.h, vp));
    CHECK_OUT(st, v, SENT_I32, __LINE__);
    if (st == APM_OK && (v < 0 || v > 1 || (q == Q_STALE && v != 0)))
        mz_fail(__LINE__, "CanRead/CanWrite wrote %d for a %s stream", (int)v, q == Q_STALE ? "closed" : "live");
}

static void a_stream_close(int in_cb)
{
    mz_pick s = pick(C_STREAM);
    (void)in_cb;
    if (CALLQ(stream_close, s.q, apm_stream_close((apm_stream *)s.h)) == APM_OK && kind_in_class(s.kind, C_STREAM))
        stale_push(s.h, s.kind);
}

/* ------------------------------------------------------------------ */
/* Actions: SslStream, TransportContext                                */
/* ------------------------------------------------------------------ */

static void a_ssl_stream_create(int in_cb)
{
    mz_pick inner = pick(C_STREAM);
    apm_stream *s = (apm_stream *)SENT_PTR, **sp = OUTP(&s);
    apm_status st;
    (void)in_cb;
    st = CALLQ(ssl_stream_create, sp == NULL ? Q_BAD : inner.q,
               apm_ssl_stream_create((apm_stream *)inner.h, chance(50) ? 0 : chance(80) ? 1 : -5, sp));
    CHECK_OUT(st, s, (apm_stream *)SENT_PTR, __LINE__);
    if (st == APM_OK)
        extras_add(s, K_SSL);
}

static void a_ssl_stream_set_callbacks(int in_cb)
{
    mz_pick s = pick(C_SSL);
    (void)in_cb;
    if (chance(50))
        CALLQ(ssl_stream_set_validation_callback, s.q,
              apm_ssl_stream_set_validation_callback((apm_stream *)s.h, chance(80) ? mz_validate : NULL, NULL));
    else
        CALLQ(ssl_stream_set_selection_callback, s.q,
              apm_ssl_stream_set_selection_callback((apm_stream *)s.h, chance(80) ? mz_select : NULL, NULL));
}

static void a_ssl_stream_set_trusted_ca_file(int in_cb)
{
    mz_pick s = pick(C_SSL);
    (void)in_cb;
    CALLQ(ssl_stream_set_trusted_ca_file, s.q,
          apm_ssl_stream_set_trusted_ca_file((apm_stream *)s.h, chance(40) ? g_cert_file : pick_path()));
}

static void a_ssl_stream_set_application_protocols(int in_cb)
{
    const char *lists[][3] = {{"h2", "http/1.1", "x"}, {"http/1.1", NULL, "h2"}, {"", "h2", "h2"},
                              {g_long_name, "h2", "h2"}, {"\xff\xfe", "h2", "h2"}, {NULL, NULL, NULL}};
    mz_pick s = pick(C_SSL);
    const char *const *list = (const char *const *)lists[below(6)];
    size_t count = below(4);
    (void)in_cb;
    if (chance(10)) {
        list = NULL;
        count = chance(50) ? 0 : pick_size(3);
    }
    CALLQ(ssl_stream_set_application_protocols, s.q,
          apm_ssl_stream_set_application_protocols((apm_stream *)s.h, list, count));
}

static void a_ssl_authenticate(int in_cb)
{
    mz_pick s = pick(C_SSL);
    int32_t protocols = pick_protocols();
    (void)in_cb;
    if (chance(50)) {
        mz_pick cert = pick_cert_arg();
        GUARDED(s.h, s.kind, CALLQ(ssl_stream_authenticate_as_client, qworst(s.q, cert.q),
                                   apm_ssl_stream_authenticate_as_client((apm_stream *)s.h, pick_target_host(),
                                                                         (apm_certificate *)cert.h, protocols,
                                                                         chance(10))));
    } else {
        mz_pick cert = pick_cert_arg();
        GUARDED(s.h, s.kind, CALLQ(ssl_stream_authenticate_as_server, qworst(s.q, cert.q),
                                   apm_ssl_stream_authenticate_as_server((apm_stream *)s.h, (apm_certificate *)cert.h,
                                                                         chance(20), protocols, chance(10))));
    }
}

static void a_ssl_stream_shutdown(int in_cb)
{
    mz_pick s = pick(C_SSL);
    (void)in_cb;
    GUARDED(s.h, s.kind, CALLQ(ssl_stream_shutdown, s.q, apm_ssl_stream_shutdown((apm_stream *)s.h)));
}

typedef apm_status (*ssl_get_fn)(apm_stream *, int32_t *);

static void a_ssl_stream_flags(int in_cb)
{
    static const struct {
        int id;
        ssl_get_fn fn;
        int boolean;
    } getters[] = {
        {E_ssl_stream_is_authenticated, apm_ssl_stream_is_authenticated, 1},
        {E_ssl_stream_is_server, apm_ssl_stream_is_server, 1},
        {E_ssl_stream_is_encrypted, apm_ssl_stream_is_encrypted, 1},
        {E_ssl_stream_is_signed, apm_ssl_stream_is_signed, 1},
        {E_ssl_stream_is_mutually_authenticated, apm_ssl_stream_is_mutually_authenticated, 1},
        {E_ssl_stream_get_ssl_protocol, apm_ssl_stream_get_ssl_protocol, 0},
        {E_ssl_stream_get_cipher_suite, apm_ssl_stream_get_cipher_suite, 0},
    };
    unsigned i = below(sizeof getters / sizeof getters[0]);
    mz_pick s = pick(C_SSL);
    int32_t v = SENT_I32, *vp = OUTP(&v);
    apm_status st;
    (void)in_cb;
    st = mz_ret(getters[i].id, getters[i].fn((apm_stream *)s.h, vp), vp == NULL ? Q_BAD : s.q, __LINE__);
    CHECK_OUT(st, v, SENT_I32, __LINE__);
    if (st == APM_OK && getters[i].boolean && v != 0 && v != 1)
        mz_fail(__LINE__, "%s wrote %d", mz_names[getters[i].id], (int)v);
}

static void a_ssl_stream_texts(int in_cb)
{
    mz_pick s = pick(C_SSL);
    char text[128], *tp;
    size_t len, out = SENT_SZ, *op = chance(20) ? NULL : &out;
    apm_status st;
    (void)in_cb;
    pick_text_buf(text, sizeof text, &tp, &len);
    switch (below(3)) {
    case 0:
        st = CALLQ(ssl_stream_get_cipher_suite_name, s.q,
                   apm_ssl_stream_get_cipher_suite_name((apm_stream *)s.h, tp, len, op));
        check_text(st, tp, len, __LINE__);
        break;
    case 1:
        st = CALLQ(ssl_stream_get_target_host_name, s.q,
                   apm_ssl_stream_get_target_host_name((apm_stream *)s.h, tp, len, op));
        check_text(st, tp, len, __LINE__);
        break;
    default:
        st = CALLQ(ssl_stream_get_application_protocol, s.q,
                   apm_ssl_stream_get_application_protocol((apm_stream *)s.h, (uint8_t *)tp, len, op));
        break;
    }
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
}

static void a_ssl_stream_objects(int in_cb)
{
    mz_pick s = pick(C_SSL);
    void *o = SENT_PTR;
    int which = (int)below(3);
    int q = chance(5) ? Q_BAD : s.q;
    void **op = q == Q_BAD ? NULL : &o;
    apm_status st;
    (void)in_cb;
    if (which == 0)
        st = CALLQ(ssl_stream_get_remote_certificate, q,
                   apm_ssl_stream_get_remote_certificate((apm_stream *)s.h, (apm_certificate **)op));
    else if (which == 1)
        st = CALLQ(ssl_stream_get_local_certificate, q,
                   apm_ssl_stream_get_local_certificate((apm_stream *)s.h, (apm_certificate **)op));
    else
        st = CALLQ(ssl_stream_get_transport_context, q,
                   apm_ssl_stream_get_transport_context((apm_stream *)s.h, (apm_transport_context **)op));
    CHECK_OUT(st, o, SENT_PTR, __LINE__);
    if (st == APM_OK && o == SENT_PTR)
        mz_fail(__LINE__, "a getter of an SslStream's object succeeded without writing it");
    if (st == APM_OK && o != NULL)
        extras_add(o, which == 2 ? K_TCTX : K_CERT);
}

static void a_transport_context(int in_cb)
{
    static const int32_t kinds[] = {APM_CHANNEL_BINDING_KIND_UNIQUE, APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                    APM_CHANNEL_BINDING_KIND_UNKNOWN, -1, 1000};
    mz_pick c = pick(C_TCTX);
    uint8_t buf[256];
    char *bp;
    size_t len, out = SENT_SZ, *op = chance(20) ? NULL : &out;
    apm_status st;
    (void)in_cb;
    pick_text_buf((char *)buf, sizeof buf, &bp, &len);
    switch (below(5)) {
    case 0:
        if (CALLQ(transport_context_close, c.q, apm_transport_context_close((apm_transport_context *)c.h)) ==
                APM_OK && c.kind == K_TCTX)
            stale_push(c.h, K_TCTX);
        return;
    case 1:
    case 2:
        st = CALLQ(transport_context_get_channel_binding, c.q,
                   apm_transport_context_get_channel_binding((apm_transport_context *)c.h, PICK(kinds),
                                                             (uint8_t *)bp, len, op));
        break;
    default:
        st = CALLQ(transport_context_get_channel_binding_token, c.q,
                   apm_transport_context_get_channel_binding_token((apm_transport_context *)c.h, PICK(kinds),
                                                                   (uint8_t *)bp, len, op));
        break;
    }
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
}

/* ------------------------------------------------------------------ */
/* Actions: certificates                                               */
/* ------------------------------------------------------------------ */

/* Every getter of one certificate (a live one: they must not fail but for documented reasons). */
static void cert_getters(apm_certificate *c, int q)
{
    char text[256], *tp;
    size_t len, out = SENT_SZ, *op = chance(20) ? NULL : &out;
    int32_t has = SENT_I32, *hp = OUTP(&has);
    int64_t nb = SENT_I64, na = SENT_I64, *nbp = OUTP(&nb), *nap = OUTP(&na);
    apm_status st;
    pick_text_buf(text, sizeof text, &tp, &len);
    st = CALLQ(certificate_get_subject, q, apm_certificate_get_subject(c, tp, len, op));
    check_text(st, tp, len, __LINE__);
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
    st = CALLQ(certificate_get_issuer, q, apm_certificate_get_issuer(c, tp, len, op));
    check_text(st, tp, len, __LINE__);
    out = SENT_SZ;
    st = CALLQ(certificate_get_thumbprint, q, apm_certificate_get_thumbprint(c, tp, len, op));
    check_text(st, tp, len, __LINE__);
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
    if (st == APM_OK && op != NULL && out != 40)
        mz_fail(__LINE__, "a thumbprint of %zu characters", out);
    out = SENT_SZ;
    st = CALLQ(certificate_get_raw_data, q, apm_certificate_get_raw_data(c, (uint8_t *)tp, len, op));
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
    st = CALLQ(certificate_has_private_key, hp == NULL ? Q_BAD : q, apm_certificate_has_private_key(c, hp));
    CHECK_OUT(st, has, SENT_I32, __LINE__);
    if (st == APM_OK && has != 0 && has != 1)
        mz_fail(__LINE__, "HasPrivateKey wrote %d", (int)has);
    st = CALLQ(certificate_get_validity, (nbp == NULL || nap == NULL) ? Q_BAD : q,
               apm_certificate_get_validity(c, nbp, nap));
    CHECK_OUT(st, nb, SENT_I64, __LINE__);
    CHECK_OUT(st, na, SENT_I64, __LINE__);
}

static void a_certificate_getters(int in_cb)
{
    mz_pick c = pick(C_CERT);
    (void)in_cb;
    cert_getters((apm_certificate *)c.h, c.q);
}

/* A freshly loaded certificate: its getters, then kept or closed. */
static void loaded(apm_status st, apm_certificate *c)
{
    CHECK_OUT(st, c, (apm_certificate *)SENT_PTR, __LINE__);
    if (st != APM_OK)
        return;
    if (c == NULL || c == (apm_certificate *)SENT_PTR)
        mz_fail(__LINE__, "a certificate loader succeeded without a certificate");
    cert_getters(c, Q_LIVE);
    if (chance(50))
        extras_add(c, K_CERT);
    else
        close_owned((mz_h){c, K_CERT});
}

static const char other_key_pem[] = /* a key that does not match the test certificate */
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSpy6orB31gjPXUyL\n"
    "RB0LnW0HuYw4pbML7d0WLikKEA2hRANCAAT9HG6cFqjD3NIWsTvLnb+yFqA87kjz\n"
    "k5ero1shsfgzlEGsW3I5cUoYpVeiGQgsWDgVtP2UZMEe7FeZQ75H0W9t\n"
    "-----END PRIVATE KEY-----\n";

/* Flips bits, truncates or extends a copy of data (of cap bytes at most). */
static size_t mangle(uint8_t *buf, size_t cap, const uint8_t *data, size_t len)
{
    memcpy(buf, data, len);
    switch (below(6)) {
    case 0: buf[below_sz(len)] ^= (uint8_t)(1u << below(8)); return len;
    case 1:
        for (int i = 0; i < 3; i++)
            buf[below_sz(len)] ^= (uint8_t)(1u << below(8));
        return len;
    case 2: return below_sz(len);
    case 3: {
        size_t n = below(64);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rnd();
        return n;
    }
    case 4: {
        size_t extra = below(16);
        if (len + extra > cap)
            extra = cap - len;
        for (size_t i = 0; i < extra; i++)
            buf[len + i] = (uint8_t)rnd();
        return len + extra;
    }
    default: return len;
    }
}

static void a_certificate_load(int in_cb)
{
    apm_certificate *c = (apm_certificate *)SENT_PTR, **cp = OUTP(&c);
    static _Thread_local uint8_t buf[4096], kbuf[1024];
    apm_status st;
    (void)in_cb;
    switch (below(4)) {
    case 0: {
        size_t n = mangle(buf, sizeof buf, g_der, g_der_len);
        const uint8_t *p = chance(4) ? NULL : buf;
        st = CALLQ(certificate_load_der, (p == NULL || cp == NULL) ? Q_BAD : Q_LIVE,
                   apm_certificate_load_der(p, p == NULL ? pick_size(10) : n, cp));
        break;
    }
    case 1: {
        size_t n = chance(50) ? mangle(buf, sizeof buf, (const uint8_t *)hx_test_cert_pem, strlen(hx_test_cert_pem))
                              : strlen(hx_test_cert_pem);
        const uint8_t *key = NULL;
        size_t klen = 0;
        if (n == strlen(hx_test_cert_pem))
            memcpy(buf, hx_test_cert_pem, n);
        switch (below(5)) {
        case 0: key = (const uint8_t *)hx_test_key_pem; klen = strlen(hx_test_key_pem); break;
        case 1: key = (const uint8_t *)other_key_pem; klen = strlen(other_key_pem); break;
        case 2: klen = mangle(kbuf, sizeof kbuf, (const uint8_t *)hx_test_key_pem, strlen(hx_test_key_pem));
                key = kbuf; break;
        case 3: klen = pick_size(10); break; /* NULL key with a length */
        default: break;
        }
        st = CALLQ(certificate_load_pem, cp == NULL ? Q_BAD : Q_LIVE,
                   apm_certificate_load_pem(chance(4) ? NULL : buf, n, key, klen, cp));
        break;
    }
    case 2:
        st = CALLQ(certificate_load_pem_file, cp == NULL ? Q_BAD : Q_LIVE,
                   apm_certificate_load_pem_file(pick_path(), chance(50) ? NULL : pick_path(), cp));
        break;
    default: {
        static const char *const passwords[] = {NULL, "", "secret", "\xff\xfe"};
        st = CALLQ(certificate_load_pkcs12_file, cp == NULL ? Q_BAD : Q_LIVE,
                   apm_certificate_load_pkcs12_file(chance(50) ? g_p12_file : pick_path(), PICK(passwords), cp));
        break;
    }
    }
    loaded(st, c);
}

static void a_certificate_close(int in_cb)
{
    mz_pick c = pick(C_CERT);
    (void)in_cb;
    if (CALLQ(certificate_close, c.q, apm_certificate_close((apm_certificate *)c.h)) == APM_OK && c.kind == K_CERT)
        stale_push(c.h, K_CERT);
}

/* ------------------------------------------------------------------ */
/* Actions: runtime, errors, version                                   */
/* ------------------------------------------------------------------ */

static void a_runtime_configure(int in_cb)
{
    static const int32_t threads[] = {0, 1, 2, -1, 65, INT32_MAX, INT32_MIN};
    static const int32_t spins[] = {0, 10, 50, -1, 1000001, INT32_MIN};
    apm_status st;
    (void)in_cb;
    st = CALL(runtime_configure, apm_runtime_configure(PICK(threads), PICK(spins)));
    if (st != APM_OK && st != APM_E_ARGUMENT_OUT_OF_RANGE && st != APM_E_INVALID_OPERATION)
        mz_fail(__LINE__, "apm_runtime_configure returned %s", hx_status_name(st));
}

static void a_runtime_shutdown(int in_cb)
{
    apm_status st;
    (void)in_cb;
    if (!g_allow_shutdown || !chance(25))
        return;
    atomic_fetch_add(&g_shutdowns, 1);
    st = GUARDED(NULL, K_NONE, CALL(runtime_shutdown, apm_runtime_shutdown()));
    if (st != APM_OK)
        mz_fail(__LINE__, "apm_runtime_shutdown from a thread of ours returned %s", hx_status_name(st));
    if (chance(50))
        a_runtime_configure(0);
}

static void a_last_error(int in_cb)
{
    char buf[256], *bp;
    size_t len, out = SENT_SZ, *op = chance(20) ? NULL : &out;
    apm_status before = apm_last_error_status(), st;
    (void)in_cb;
    COUNT(last_error_status);
    if (before > 0 || before < APM_E_CRYPTOGRAPHIC)
        mz_fail(__LINE__, "apm_last_error_status is %d", (int)before);
    pick_text_buf(buf, sizeof buf, &bp, &len);
    switch (below(4)) {
    case 0:
        st = CALL(last_error_message, apm_last_error_message(bp, len, op));
        break;
    case 1:
        st = CALL(last_error_inner_message, apm_last_error_inner_message(bp, len, op));
        break;
    case 2:
        (void)apm_last_error_socket_error();
        COUNT(last_error_socket_error);
        (void)apm_last_error_errno();
        COUNT(last_error_errno);
        (void)apm_last_error_web_status();
        COUNT(last_error_web_status);
        (void)apm_last_error_http_status();
        COUNT(last_error_http_status);
        return;
    default:
        if (CALL(last_error_clear, apm_last_error_clear()) != APM_OK || apm_last_error_status() != APM_OK)
            mz_fail(__LINE__, "apm_last_error_clear did not clear the record");
        return;
    }
    if ((st != APM_OK) != (bp == NULL && len > 0))
        mz_fail(__LINE__, "copying the last error into (%p, %zu) returned %s", (void *)bp, len, hx_status_name(st));
    CHECK_OUT(st, out, SENT_SZ, __LINE__);
    check_text(st, bp, len, __LINE__);
    if (apm_last_error_status() != before)
        mz_fail(__LINE__, "reading the last error changed it (from %s to %s)", hx_status_name(before),
                hx_status_name(apm_last_error_status()));
}

static void a_version(int in_cb)
{
    char expected[32];
    int32_t code = (int32_t)rnd();
    const char *name;
    (void)in_cb;
    snprintf(expected, sizeof expected, "%d.%d.%d", APM_VERSION_MAJOR, APM_VERSION_MINOR, APM_VERSION_PATCH);
    if (apm_version() == NULL || strcmp(apm_version(), expected) != 0)
        mz_fail(__LINE__, "apm_version is not %s", expected);
    COUNT(version);
    if (apm_version_number() != APM_VERSION_NUMBER)
        mz_fail(__LINE__, "apm_version_number is %u", (unsigned)apm_version_number());
    COUNT(version_number);
    if (chance(50))
        code = -(int32_t)below(25);
    name = apm_status_name(code);
    COUNT(status_name);
    if (name == NULL)
        mz_fail(__LINE__, "apm_status_name(%d) is NULL", (int)code);
    if ((code <= 0 && code >= APM_E_CRYPTOGRAPHIC) == (strcmp(name, "APM_UNKNOWN") == 0) ||
        strncmp(name, "APM_", 4) != 0)
        mz_fail(__LINE__, "apm_status_name(%d) is %s", (int)code, name);
}

/* ------------------------------------------------------------------ */
/* The fuzzing threads                                                 */
/* ------------------------------------------------------------------ */

#define F_BLOCKING 1 /* blocks, or makes connections: never from a callback */

typedef struct mz_action {
    const char *name;
    void (*fn)(int in_cb);
    int weight;
    int flags;
} mz_action;

#define ACT(name, weight, flags) {#name, a_##name, weight, flags}
static const mz_action g_table[] = {
    ACT(end_some_action, 130, 0),
    ACT(socket_begin_accept, 12, 0),
    ACT(socket_begin_connect, 12, 0),
    ACT(socket_begin_send, 25, 0),
    ACT(socket_begin_receive, 25, 0),
    ACT(socket_begin_send_file, 10, 0),
    ACT(socket_begin_send_file_with_progress, 10, 0),
    ACT(stream_begin_write, 30, 0),
    ACT(stream_begin_read, 30, 0),
    ACT(ssl_stream_begin_authenticate_as_client, 10, 0),
    ACT(ssl_stream_begin_authenticate_as_server, 10, 0),
    ACT(pair_handshake, 6, 0),
    ACT(pair_handshake_blocking, 4, F_BLOCKING),
    ACT(ssl_stream_begin_shutdown, 8, 0),
    ACT(socket_end_accept, 6, 0),
    ACT(socket_end_connect, 6, 0),
    ACT(socket_end_send, 8, 0),
    ACT(socket_end_receive, 8, 0),
    ACT(socket_end_send_file, 6, 0),
    ACT(stream_end_write, 8, 0),
    ACT(stream_end_read, 8, 0),
    ACT(ssl_stream_end_authenticate_as_client, 5, 0),
    ACT(ssl_stream_end_authenticate_as_server, 5, 0),
    ACT(ssl_stream_end_shutdown, 5, 0),
    ACT(async_result_getters, 25, 0),
    ACT(async_result_wait, 10, 0),
    ACT(async_result_cancel, 12, 0),
    ACT(socket_create, 8, 0),
    ACT(socket_bind, 8, 0),
    ACT(socket_listen, 6, 0),
    ACT(socket_shutdown, 6, 0),
    ACT(socket_close, 8, 0),
    ACT(socket_get_connected, 4, 0),
    ACT(socket_get_available, 4, 0),
    ACT(socket_get_no_delay, 3, 0),
    ACT(socket_set_no_delay, 3, 0),
    ACT(socket_get_send_buffer_size, 3, 0),
    ACT(socket_set_send_buffer_size, 3, 0),
    ACT(socket_get_receive_buffer_size, 3, 0),
    ACT(socket_set_receive_buffer_size, 3, 0),
    ACT(socket_get_send_timeout, 3, 0),
    ACT(socket_set_send_timeout, 3, 0),
    ACT(socket_get_receive_timeout, 3, 0),
    ACT(socket_set_receive_timeout, 3, 0),
    ACT(socket_set_linger, 3, 0),
    ACT(socket_get_linger, 3, 0),
    ACT(socket_get_local_endpoint, 4, 0),
    ACT(socket_get_remote_endpoint, 4, 0),
    ACT(socket_accept, 4, F_BLOCKING),
    ACT(socket_connect, 4, F_BLOCKING),
    ACT(socket_send, 4, F_BLOCKING),
    ACT(socket_receive, 4, F_BLOCKING),
    ACT(socket_send_file, 3, F_BLOCKING),
    ACT(network_stream_create, 8, 0),
    ACT(stream_create_custom, 5, 0),
    ACT(custom_stream_complete, 10, 0),
    ACT(stream_write, 4, F_BLOCKING),
    ACT(stream_read, 4, F_BLOCKING),
    ACT(stream_can, 6, 0),
    ACT(stream_close, 8, 0),
    ACT(ssl_stream_create, 6, 0),
    ACT(ssl_stream_set_callbacks, 5, 0),
    ACT(ssl_stream_set_trusted_ca_file, 4, 0),
    ACT(ssl_stream_set_application_protocols, 4, 0),
    ACT(ssl_authenticate, 3, F_BLOCKING),
    ACT(ssl_stream_shutdown, 3, F_BLOCKING),
    ACT(ssl_stream_flags, 12, 0),
    ACT(ssl_stream_texts, 8, 0),
    ACT(ssl_stream_objects, 8, 0),
    ACT(transport_context, 8, 0),
    ACT(certificate_getters, 10, 0),
    ACT(certificate_load, 12, 0),
    ACT(certificate_close, 4, 0),
    ACT(runtime_configure, 2, 0),
    ACT(runtime_shutdown, 1, F_BLOCKING),
    ACT(last_error, 8, 0),
    ACT(version, 3, 0),
    ACT(recycle, 14, F_BLOCKING),
};
#define MZ_ACTIONS ((int)(sizeof g_table / sizeof g_table[0]))

static void run_action(int in_callback)
{
    static int total;
    int r;
    if (total == 0) {
        int t = 0;
        for (int i = 0; i < MZ_ACTIONS; i++)
            t += g_table[i].weight;
        total = t;
    }
    for (int tries = 0; tries < 8; tries++) {
        r = (int)below((uint32_t)total);
        for (int i = 0; i < MZ_ACTIONS; i++) {
            if (r < g_table[i].weight) {
                if (in_callback && (g_table[i].flags & F_BLOCKING))
                    break;
                if (tl_index >= 0 && !in_callback)
                    atomic_store(&g_current[tl_index], g_table[i].name);
                {
                    int64_t t0 = hx_now_ms();
                    g_table[i].fn(in_callback);
                    if (hx_now_ms() - t0 > 1000 && env_long("APMNET_MISUSE_VERBOSE", 0))
                        fprintf(stderr, "misuse: %s took %lld ms%s\n", g_table[i].name,
                                (long long)(hx_now_ms() - t0), in_callback ? " (in a callback)" : "");
                }
                atomic_fetch_add(&g_actions, 1);
                return;
            }
            r -= g_table[i].weight;
        }
    }
}

static void *fuzz_main(void *arg)
{
    int idx = (int)(intptr_t)arg;
    tl_index = idx;
    tl_rng = g_seed * 0x9E3779B97F4A7C15ull + (uint64_t)idx * 0xD1B54A32D192ED03ull + 1;
    tl_rng_seeded = 1;
    while (atomic_load(&g_total) < g_target)
        run_action(0);
    atomic_store(&g_current[idx], "(done)");
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The test                                                            */
/* ------------------------------------------------------------------ */

static void configure(void)
{
    const char *seed = getenv("APMNET_MISUSE_SEED");
    g_valgrind = RUNNING_ON_VALGRIND || env_long("APMNET_VALGRIND", 0) != 0;
    if (seed != NULL && *seed != '\0')
        g_seed = strtoull(seed, NULL, 0);
    else
        g_seed = ((unsigned long long)time(NULL) * 1000003ull) ^ (unsigned long long)getpid();
    g_target = env_long("APMNET_MISUSE_CALLS", g_valgrind ? 20000 : 100000);
    {
        /* All checks by default (the three bugs they found are fixed); `none` or a list narrows. */
        const char *s = getenv("APMNET_MISUSE_STRICT");
        int all = s == NULL || *s == '\0' || strcmp(s, "1") == 0 || strcmp(s, "all") == 0;
        g_strict_kinds = all || (s != NULL && strstr(s, "kinds") != NULL);
        g_strict_shutdown = all || (s != NULL && strstr(s, "shutdown") != NULL);
        g_strict_listeners = all || (s != NULL && strstr(s, "listeners") != NULL);
    }
    g_allow_shutdown = env_long("APMNET_MISUSE_SHUTDOWN", 1) != 0;
    g_wd_ms = g_valgrind ? 300 : 25;
    g_setup_ms = g_valgrind ? 60000 : 3000;
}

static void setup(void)
{
    size_t len = 0;
    static const uint8_t junk[] = "\x30\x82\x01\x00 this is not PKCS#12";
    g_wbuf = (uint8_t *)hx_xmalloc(MZ_BUF);
    g_rbuf = (uint8_t *)hx_xmalloc(MZ_BUF);
    hx_pattern_fill(g_wbuf, MZ_BUF, g_seed, 0);
    memset(g_rbuf, 0, MZ_BUF);
    memset(g_long_name, 'a', 256);
    g_long_name[256] = '\0';
    g_file = hx_temp_file_with(g_wbuf, 8192);
    g_cert_file = hx_temp_file_with(hx_test_cert_pem, strlen(hx_test_cert_pem));
    g_key_file = hx_temp_file_with(hx_test_key_pem, strlen(hx_test_key_pem));
    {
        size_t a = strlen(hx_test_cert_pem), b = strlen(hx_test_key_pem);
        char *both = (char *)hx_xmalloc(a + b);
        memcpy(both, hx_test_cert_pem, a);
        memcpy(both + a, hx_test_key_pem, b);
        g_both_file = hx_temp_file_with(both, a + b);
        free(both);
    }
    g_junk_file = hx_temp_file_with(junk, sizeof junk - 1);
    g_p12_file = hx_temp_file_with("", 0);
    {
        /* A PKCS#12 file of the test certificate (password "secret"), when the openssl tool is
         * there; otherwise it stays empty and only fails to load. */
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "openssl pkcs12 -export -in '%s' -inkey '%s' -out '%s' -passout pass:secret >/dev/null 2>&1",
                 g_cert_file, g_key_file, g_p12_file);
        if (system(cmd) != 0)
            fprintf(stderr, "misuse: no PKCS#12 file (the openssl tool failed); its loads only fail\n");
    }
    g_missing = hx_temp_missing_path(".pem");
    g_dir = getenv("TMPDIR") != NULL && *getenv("TMPDIR") != '\0' ? getenv("TMPDIR") : "/tmp";

    ASSERT_OK(apm_certificate_load_pem((const uint8_t *)hx_test_cert_pem, strlen(hx_test_cert_pem),
                                       (const uint8_t *)hx_test_key_pem, strlen(hx_test_key_pem), &g_master));
    ASSERT_OK(apm_certificate_get_raw_data(g_master, g_der, sizeof g_der, &len));
    ASSERT_LT(len, sizeof g_der);
    g_der_len = len;

    recs_init();
    for (int i = 0; i <= MZ_THREADS; i++)
        pthread_mutex_init(&g_watch[i].mu, NULL);
    for (int i = 0; i < MZ_THREADS; i++)
        atomic_store(&g_current[i], "(starting)");
}

/* Ends every live result (only the accepts, while their listeners are still open, or all, once
 * every object was closed): a pending one is cancelled, and must then complete. */
static void end_live(int only_accepts)
{
    int used = atomic_load(&g_recs_used);
    for (int i = 0; i < used; i++) {
        mz_rec *rec = &g_recs[i];
        int64_t deadline = hx_now_ms() + hx_wait_ms();
        for (;;) {
            mz_snap s = rec_snap(rec);
            int32_t c = 0, sig = 0;
            if (s.phase != R_LIVE || (only_accepts && s.end_kind != EK_ACCEPT))
                break;
            if (!claim_snap(&s)) { /* a callback has it for a moment */
                if (hx_now_ms() > deadline)
                    mz_fail(__LINE__, "a live result stays claimed (end kind %d)", s.end_kind);
                hx_sleep_ms(1);
                continue;
            }
            if (CALL(async_result_is_completed, apm_async_result_is_completed(s.result, &c)) == APM_OK && c != 1) {
                apm_status st = CALL(async_result_cancel, apm_async_result_cancel(s.result));
                if (st != APM_OK && st != APM_E_NOT_SUPPORTED)
                    mz_fail(__LINE__, "cancel of a live result returned %s", hx_status_name(st));
            }
            if (CALL(async_result_wait, apm_async_result_wait(s.result, hx_wait_ms(), &sig)) != APM_OK || sig != 1)
                mz_fail(__LINE__, "an operation (end kind %d, owner kind %d) did not complete after it was cancelled%s",
                        s.end_kind, s.owner_kind, only_accepts ? "" : " and every object was closed");
            mz_end_correct(rec, s.result, __LINE__);
            break;
        }
    }
}

static void report_records(void)
{
    int used = atomic_load(&g_recs_used), shown = 0;
    for (int i = 0; i < used && shown < 10; i++) {
        mz_rec *rec = &g_recs[i];
        int phase = rec_phase(rec);
        if (phase == R_FREE || phase == R_FAILED)
            continue;
        fprintf(stderr, "  record %d: phase %d, end kind %d, owner kind %d, callback %d, callbacks run %d\n", i,
                phase, rec->end_kind, rec->owner_kind, rec->has_cb, atomic_load(&rec->cbs));
        shown++;
    }
}

static void print_figures(double secs)
{
    int called = 0, succeeded = 0;
    char missing[2048] = "";
    for (int i = 0; i < E_COUNT; i++) {
        long n = atomic_load(&g_calls[i]);
        if (n > 0)
            called++;
        else if (strlen(missing) + strlen(mz_names[i]) + 2 < sizeof missing)
            strcat(strcat(missing, " "), mz_names[i]);
        if (atomic_load(&g_oks[i]) > 0)
            succeeded++;
        if (env_long("APMNET_MISUSE_VERBOSE", 0))
            fprintf(stderr, "  %-48s %8ld calls %8ld ok\n", mz_names[i], n, atomic_load(&g_oks[i]));
    }
    fprintf(stderr,
            "misuse: seed %llu, %d threads, %ld calls (%ld actions) in %.1f s: %d/%d exports called, %d succeeded; "
            "%ld Begins succeeded (%ld with a callback), %ld callbacks, %ld Ends released, %ld custom-stream "
            "completions, %ld validation callbacks, %ld watchdog closes, %ld runtime shutdowns, %ld setup handshakes "
            "stuck\n",
            g_seed, MZ_THREADS, atomic_load(&g_total), atomic_load(&g_actions), secs, called, (int)E_COUNT,
            succeeded, atomic_load(&g_begun), atomic_load(&g_begun_cb), atomic_load(&g_callbacks),
            atomic_load(&g_ended), atomic_load(&g_custom_ops), atomic_load(&g_validations),
            atomic_load(&g_watchdog_closes), atomic_load(&g_shutdowns), atomic_load(&g_stuck_handshakes));
    if (called < (int)E_COUNT) {
        fprintf(stderr, "misuse: never called:%s\n", missing);
        if (g_target >= 50000)
            mz_fail(__LINE__, "%d exports were never called", (int)E_COUNT - called);
    }
}

TEST(misuse_fuzz)
{
    pthread_t threads[MZ_THREADS], watchdog, completer;
    int64_t start, last_change;
    long last_total = -1;
    int done = 0;

    configure();
    fprintf(stderr, "misuse: seed %llu (APMNET_MISUSE_SEED), %ld calls (APMNET_MISUSE_CALLS)%s%s%s\n", g_seed,
            g_target, g_valgrind ? ", under valgrind" : "", (g_strict_kinds || g_strict_shutdown || g_strict_listeners) ? ", strict" : "",
            g_allow_shutdown ? "" : ", no runtime shutdowns");
    setup();
    tl_index = MZ_THREADS;
    watchdog = hx_thread_start(watchdog_main, NULL);
    completer = hx_thread_start(completer_main, NULL);
    for (int i = 0; i < MZ_UNITS; i++) {
        mz_unit u;
        unit_build(&u, utype_of(i));
        unit_install(i, &u);
    }
    start = hx_now_ms();
    last_change = start;
    for (int i = 0; i < MZ_THREADS; i++)
        threads[i] = hx_thread_start(fuzz_main, (void *)(intptr_t)i);

    /* No progress for a long time is a hang: say where each thread is. */
    while (!done) {
        long total = atomic_load(&g_total);
        hx_sleep_ms(50);
        done = 1;
        for (int i = 0; i < MZ_THREADS; i++)
            if (strcmp(atomic_load(&g_current[i]), "(done)") != 0)
                done = 0;
        if (total != last_total) {
            last_total = total;
            last_change = hx_now_ms();
        } else if (hx_now_ms() - last_change > hx_wait_ms()) {
            for (int i = 0; i < MZ_THREADS; i++)
                fprintf(stderr, "  thread %d is in %s\n", i, atomic_load(&g_current[i]));
            dump_stacks();
            mz_fail(__LINE__, "no apmnet call returned for %d ms", hx_wait_ms());
        }
    }
    for (int i = 0; i < MZ_THREADS; i++)
        hx_thread_join(threads[i]);

    /* Everything is closed, which completes every pending operation; then every result is
     * ended and every callback must have run, once. */
    atomic_store(&g_stopping, 1);
    {
        int64_t deadline = hx_now_ms() + hx_wait_ms();
        while (atomic_load(&g_cb_active) > 0) {
            if (hx_now_ms() > deadline)
                mz_fail(__LINE__, "callbacks are still running actions %d ms after the end", hx_wait_ms());
            hx_sleep_ms(1);
        }
    }
    if (!g_strict_listeners)
        end_live(1);
    close_everything();
    {
        int64_t deadline = hx_now_ms() + hx_wait_ms();
        while (atomic_load(&g_jobs_pending) > 0) {
            if (hx_now_ms() > deadline)
                mz_fail(__LINE__, "%ld custom-stream operations were never completed", atomic_load(&g_jobs_pending));
            hx_sleep_ms(1);
        }
    }
    end_live(0);
    {
        int64_t deadline = hx_now_ms() + hx_wait_ms();
        while (atomic_load(&g_recs_live) > 0) {
            if (hx_now_ms() > deadline) {
                report_records();
                mz_fail(__LINE__, "%d successful Begins never had their callback run or were never ended",
                        atomic_load(&g_recs_live));
            }
            hx_sleep_ms(1);
        }
    }
    ASSERT_OK(apm_certificate_close(g_master));
    ASSERT_OK(apm_runtime_shutdown());
    hx_sleep_ms(20);
    if (atomic_load(&g_callbacks) != atomic_load(&g_begun_cb))
        mz_fail(__LINE__, "%ld callbacks ran for %ld successful Begins with a callback", atomic_load(&g_callbacks),
                atomic_load(&g_begun_cb));

    atomic_store(&g_wd_stop, 1);
    hx_thread_join(watchdog);
    pthread_mutex_lock(&g_jobs_mu);
    g_jobs_stop = 1;
    pthread_cond_broadcast(&g_jobs_cv);
    pthread_mutex_unlock(&g_jobs_mu);
    hx_thread_join(completer);
    if (atomic_load(&g_jobs_pending) != 0)
        mz_fail(__LINE__, "custom-stream operations were started after everything was closed");
    raw_close_all();

    print_figures((double)(hx_now_ms() - start) / 1000.0);

    while (g_customs != NULL) {
        mz_custom *c = g_customs;
        g_customs = c->next;
        free(c);
    }
    for (int i = 0; i <= MZ_THREADS; i++)
        pthread_mutex_destroy(&g_watch[i].mu);
    recs_destroy();
    hx_temp_remove(g_file);
    hx_temp_remove(g_cert_file);
    hx_temp_remove(g_key_file);
    hx_temp_remove(g_both_file);
    hx_temp_remove(g_junk_file);
    hx_temp_remove(g_p12_file);
    free(g_missing);
    free(g_wbuf);
    free(g_rbuf);
}
