/* apm.c: the apmnet rows, written only against the C API (include/apmnet.h).
 *
 *   apm write    PORT MIB BUF              NetworkStream BeginWrite of BUF bytes, the next one chained
 *                                          from the callback, MIB MiB to the sink
 *   apm sendfile PORT FILE                 Socket BeginSendFile (the 8-byte length as the pre-buffer)
 *   apm tls      PORT MIB BUF              SslStream (TLS 1.3) BeginWrite chained like `write`; built
 *                                          only when the header has SslStream (apm_ssl_stream_*)
 *   apm handshake PORT SECS full|resumed VER  sequential SslStreams to the tlshello server: connect,
 *                                          AuthenticateAsClient (the validation callback accepts),
 *                                          read its byte, close; "full" turns AllowTlsResume off,
 *                                          "resumed" leaves the session cache on. Handshakes per second.
 *   apm echo     PORT CONNS SECS SIZE WARM Socket BeginSend/BeginReceive driven only from callbacks
 *   apm latency  SAMPLES                   data arrival -> callback (idle engine, and "hot": 10 us
 *                                          after the last callback), and Begin -> callback for a
 *                                          receive that has to wait
 *   apm memory   PORT CONNS                RSS per idle connection (socket + NetworkStream), and per
 *                                          pending BeginRead
 *   apm negoserver                         the NegotiateStream counterpart (prints "ready PORT"): a
 *                                          thread per connection, AuthenticateAsServer at
 *                                          EncryptAndSign (NTLM user TESTDOM\alice, Kerberos through
 *                                          KRB5_KTNAME), then the sink protocol over the NegotiateStream
 *   apm nego     PORT MIB BUF USER PASSWORD DOMAIN  NegotiateStream EncryptAndSign client to negoserver
 *                                          (target host/localhost), BeginWrite chained like `write`
 *   apm negohs   PORT SECS USER PASSWORD DOMAIN  sequential NegotiateStreams: connect, authenticate
 *                                          at EncryptAndSign, one byte out and the ack back, close
 *   apm httpget  URL CONNS SECS WARM CA    HttpWebRequest GETs, CONNS in flight, driven only by the
 *                                          Begin/End callbacks; each response stream read to its end
 *                                          (the connection goes back to the pool). CA ("-": none) is
 *                                          the only trusted certificate for https.
 *   apm httppost URL MIB BUF CA            one POST of MIB MiB with ContentLength set, the request
 *                                          stream written in BUF-byte BeginWrites chained like
 *                                          `write`, then the response read to its end
 *   apm ntlmserver CERT KEY                an https server that wants NTLM for every request
 *                                          (prints "ready PORT"): a thread per connection, our
 *                                          SslStream, then for each GET a NegotiateAuthentication
 *                                          server (user TESTDOM\alice) bound to the connection's
 *                                          tls-server-end-point with PolicyEnforcement Always: 401
 *                                          "WWW-Authenticate: NTLM", the challenge, then 200 with
 *                                          1 KiB. Every request authenticates anew, so a GET costs
 *                                          three exchanges (IIS keeps an NTLM connection
 *                                          authenticated; this server does not, to measure the
 *                                          handshake). GET /_stats: "conns N reqs M".
 *
 * Environment: BENCH_APM_SPIN_US=N calls apm_runtime_configure(0, N) first (APMNET_THREADS is read
 * by the library itself). BENCH_HTTP_USER, BENCH_HTTP_PASSWORD and BENCH_HTTP_DOMAIN give httpget's
 * requests a credential (apm_http_request_set_credential).
 *
 * The CompletedSynchronously idiom: a callback whose result completed synchronously returns at once;
 * the Begin caller sees CompletedSynchronously and calls End itself, looping instead of recursing.
 * When the operation did not complete synchronously the callback may already have called End (and
 * released the handle) by the time the caller asks, so the caller treats a failing query as "not
 * synchronous": the handle table turns a stale handle into an error code.
 */
#include "common.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "apmnet.h"

#include <openssl/evp.h>
#include <string.h>

static void fail(const char *what, apm_status st) {
  char msg[512] = "";
  size_t len = 0;
  apm_last_error_message(msg, sizeof msg, &len);
  fprintf(stderr, "%s: %s (%d): %s\n", what, apm_status_name(st), (int)st, msg);
  exit(1);
}

#define CK(call)                           \
  do {                                     \
    apm_status st_ = (call);               \
    if (st_ != APM_OK) fail(#call, st_);   \
  } while (0)

static int was_sync(apm_async_result *r) {
  int32_t cs = 0;
  return apm_async_result_completed_synchronously(r, &cs) == APM_OK && cs;
}

static apm_socket *connect_to(int port) {
  apm_socket *s = NULL;
  CK(apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP,
                       &s));
  CK(apm_socket_connect(s, "127.0.0.1", port));
  return s;
}

/* ---------------------------------------------------------------- bulk write */
static struct {
  apm_stream *stream;
  uint8_t *buf;
  size_t bufsz;
  uint64_t left, ops, sync;
  sem_t done;
} bw;

static void bw_pump(void);

static void bw_cb(apm_async_result *r, void *state) {
  (void)state;
  if (was_sync(r)) return;
  CK(apm_stream_end_write(bw.stream, r));
  bw_pump();
}

static void bw_pump(void) {
  while (bw.left) {
    size_t n = bw.left < bw.bufsz ? (size_t)bw.left : bw.bufsz;
    bw.left -= n;
    bw.ops++;
    apm_async_result *r = NULL;
    CK(apm_stream_begin_write(bw.stream, bw.buf, bw.bufsz, 0, n, bw_cb, NULL, &r));
    if (!was_sync(r)) return;
    bw.sync++;
    CK(apm_stream_end_write(bw.stream, r));
  }
  sem_post(&bw.done);
}

/* The timed part of a bulk run on bw.stream (network or TLS): the 8-byte length, MIB MiB in
 * BUFSZ writes chained from the callbacks, then the sink's 1-byte acknowledgement. */
static int bulk_run(uint64_t mib, size_t bufsz) {
  bw.buf = malloc(bufsz);
  memset(bw.buf, 'x', bufsz);
  bw.bufsz = bufsz;
  uint64_t total = bw.left = mib << 20;
  sem_init(&bw.done, 0, 0);
  unsigned char hdr[8];
  put_le64(hdr, total);
  double c0 = cpu_s(), t0 = now_s();
  CK(apm_stream_write(bw.stream, hdr, 8, 0, 8));
  bw_pump();
  while (sem_wait(&bw.done) != 0) {
  }
  uint8_t ack;
  size_t got = 0;
  CK(apm_stream_read(bw.stream, &ack, 1, 0, 1, &got));
  if (got != 1) fail("ack", APM_E_IO);
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  EXTRA("sync_fraction", (double)bw.sync / (double)bw.ops, "");
  CK(apm_stream_close(bw.stream));
  CK(apm_runtime_shutdown());
  return 0;
}

static int bulk_write(int port, uint64_t mib, size_t bufsz) {
  apm_socket *s = connect_to(port);
  CK(apm_network_stream_create(s, 1, &bw.stream));
  return bulk_run(mib, bufsz);
}

/* ---------------------------------------------------------------- TLS bulk write */
#ifdef APM_SSL_PROTOCOLS_TLS13
static int32_t accept_any(apm_stream *sender, apm_certificate *cert, apm_certificate *const *chain,
                          size_t chain_len, int32_t errors, void *state) {
  (void)sender, (void)cert, (void)chain, (void)chain_len, (void)errors, (void)state;
  return 1; /* self-signed bench certificate: accepted, as the raw and .NET clients do */
}

static int bulk_tls(int port, uint64_t mib, size_t bufsz) {
  apm_socket *s = connect_to(port);
  apm_stream *ns = NULL;
  CK(apm_network_stream_create(s, 1, &ns));
  CK(apm_ssl_stream_create(ns, 0, &bw.stream));
  CK(apm_ssl_stream_set_validation_callback(bw.stream, accept_any, NULL));
  CK(apm_ssl_stream_authenticate_as_client(bw.stream, "localhost", NULL, APM_SSL_PROTOCOLS_TLS13, 0));
  char suite[128] = "";
  size_t len = 0;
  if (apm_ssl_stream_get_cipher_suite_name(bw.stream, suite, sizeof suite, &len) == APM_OK)
    fprintf(stderr, "negotiated %s\n", suite);
  return bulk_run(mib, bufsz);
}
#endif

/* ---------------------------------------------------------------- handshakes */
#ifdef APM_SSL_PROTOCOLS_TLS13
/* One connection of `apm handshake`; returns whether the server resumed the session. */
static int apm_hello(int port, int32_t protocols, int allow_resume) {
  apm_socket *s = connect_to(port);
  apm_stream *ns = NULL, *tls = NULL;
  uint8_t b = 0;
  size_t got = 0;
  CK(apm_socket_set_no_delay(s, 1));
  CK(apm_network_stream_create(s, 1, &ns));
  CK(apm_ssl_stream_create(ns, 0, &tls));
  CK(apm_ssl_stream_set_validation_callback(tls, accept_any, NULL));
  if (!allow_resume) CK(apm_ssl_stream_set_allow_tls_resume(tls, 0));
  CK(apm_ssl_stream_authenticate_as_client(tls, "localhost", NULL, protocols, 0));
  CK(apm_stream_read(tls, &b, 1, 0, 1, &got)); /* TLS 1.3: the ticket comes before the byte */
  if (got != 1) fail("the server's byte", APM_E_IO);
  CK(apm_stream_close(tls));
  return b == 'r';
}

static int handshakes(int port, double secs, const char *mode, const char *ver) {
  int32_t protocols = strcmp(ver, "1.2") == 0 ? APM_SSL_PROTOCOLS_TLS12 : APM_SSL_PROTOCOLS_TLS13;
  int allow = strcmp(mode, "resumed") == 0;
  apm_hello(port, protocols, allow); /* warm-up, and the first session */
  uint64_t n = 0, resumed = 0;
  double c0 = cpu_s(), t0 = now_s(), t;
  do {
    resumed += (uint64_t)apm_hello(port, protocols, allow);
    n++;
  } while ((t = now_s() - t0) < secs);
  RESULT((double)n / t, "hs/s");
  CPU(cpu_s() - c0);
  EXTRA("resumed_fraction", (double)resumed / (double)n, "");
  CK(apm_runtime_shutdown());
  return 0;
}
#endif

/* ---------------------------------------------------------------- send file */
static sem_t sf_done;
static void sf_cb(apm_async_result *r, void *state) {
  (void)r;
  (void)state;
  sem_post(&sf_done);
}

static int bulk_sendfile(int port, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) die(path);
  apm_socket *s = connect_to(port);
  sem_init(&sf_done, 0, 0);
  unsigned char hdr[8];
  put_le64(hdr, (uint64_t)st.st_size);
  apm_async_result *r = NULL;
  double c0 = cpu_s(), t0 = now_s();
  CK(apm_socket_begin_send_file(s, path, hdr, 8, NULL, 0, APM_TRANSMIT_FILE_USE_DEFAULT_WORKER_THREAD,
                                sf_cb, NULL, &r));
  while (sem_wait(&sf_done) != 0) {
  }
  CK(apm_socket_end_send_file(s, r));
  uint8_t ack;
  size_t got = 0;
  CK(apm_socket_receive(s, &ack, 1, 0, 1, &got));
  if (got != 1) fail("ack", APM_E_IO);
  double t = now_s() - t0;
  RESULT((double)st.st_size / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  CK(apm_socket_close(s));
  CK(apm_runtime_shutdown());
  return 0;
}

/* ---------------------------------------------------------------- echo */
struct conn {
  apm_socket *s;
  int sending;
  size_t got;
  uint8_t in[4096];
};
static uint8_t *e_msg;
static size_t e_size;
static _Atomic uint64_t e_done;
static atomic_int e_stop;

static void e_step(struct conn *c);

static void e_complete(struct conn *c, apm_async_result *r) {
  size_t n = 0;
  if (c->sending) {
    CK(apm_socket_end_send(c->s, r, &n));
    c->sending = 0;
    return;
  }
  CK(apm_socket_end_receive(c->s, r, &n));
  if (n == 0) fail("echo server closed", APM_E_IO);
  c->got += n;
  if (c->got >= e_size) {
    c->got = 0;
    atomic_fetch_add_explicit(&e_done, 1, memory_order_relaxed);
    c->sending = 1;
  }
}

static void e_cb(apm_async_result *r, void *state) {
  if (was_sync(r)) return;
  if (atomic_load_explicit(&e_stop, memory_order_relaxed)) return;
  e_complete(state, r);
  e_step(state);
}

static void e_step(struct conn *c) {
  while (!atomic_load_explicit(&e_stop, memory_order_relaxed)) {
    apm_async_result *r = NULL;
    if (c->sending)
      CK(apm_socket_begin_send(c->s, e_msg, e_size, 0, e_size, e_cb, c, &r));
    else
      CK(apm_socket_begin_receive(c->s, c->in, e_size, c->got, e_size - c->got, e_cb, c, &r));
    if (!was_sync(r)) return;
    e_complete(c, r);
  }
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int echo_client(int port, int conns, double secs, size_t size, double warm) {
  if (size > sizeof(((struct conn *)0)->in)) size = sizeof(((struct conn *)0)->in);
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  e_msg = malloc(size);
  memset(e_msg, 'e', size);
  e_size = size;
  for (int i = 0; i < conns; i++) {
    cs[i].s = connect_to(port);
    CK(apm_socket_set_no_delay(cs[i].s, 1));
    cs[i].sending = 1;
  }
  for (int i = 0; i < conns; i++) e_step(&cs[i]);
  sleep_s(warm);
  uint64_t d0 = atomic_load(&e_done);
  double t0 = now_s(), c0 = cpu_s();
  sleep_s(secs);
  uint64_t d1 = atomic_load(&e_done);
  double t1 = now_s();
  RESULT((double)(d1 - d0) / (t1 - t0), "req/s");
  CPU(cpu_s() - c0);
  atomic_store(&e_stop, 1);
  fflush(stdout);
  _exit(0); /* pending operations are left to process exit */
}

/* ---------------------------------------------------------------- NegotiateStream */
#ifdef APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN
/* Connects and authenticates at EncryptAndSign to host/localhost (NTLM or Kerberos, as the
 * credential and the environment make Negotiate choose). */
static apm_stream *nego_connect(int port, apm_credential *cred) {
  apm_socket *s = connect_to(port);
  apm_stream *ns = NULL, *nego = NULL;
  CK(apm_socket_set_no_delay(s, 1));
  CK(apm_network_stream_create(s, 1, &ns));
  CK(apm_negotiate_stream_create(ns, 0, &nego));
  CK(apm_negotiate_stream_authenticate_as_client(nego, cred, "host/localhost", NULL, 0,
                                                 APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                 APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION));
  return nego;
}

static void nego_package(apm_stream *nego) {
  char pkg[32] = "";
  size_t len = 0;
  CK(apm_negotiate_stream_get_remote_identity_authentication_type(nego, pkg, sizeof pkg, &len));
  int32_t enc = 0;
  CK(apm_negotiate_stream_is_encrypted(nego, &enc));
  fprintf(stderr, "authenticated with %s, encrypted %d\n", pkg, (int)enc);
  EXTRA("kerberos", strcmp(pkg, "Kerberos") == 0, ""); /* the runner notes which package ran */
}

static int nego_write(int port, uint64_t mib, size_t bufsz, const char *user, const char *pw, const char *dom) {
  apm_credential *cred = NULL;
  CK(apm_credential_create(user, pw, dom, &cred));
  bw.stream = nego_connect(port, cred);
  CK(apm_credential_close(cred));
  nego_package(bw.stream);
  return bulk_run(mib, bufsz);
}

static void nego_once(int port, apm_credential *cred) {
  apm_stream *nego = nego_connect(port, cred);
  unsigned char hdr[9];
  put_le64(hdr, 1);
  hdr[8] = 'b';
  uint8_t ack = 0;
  size_t got = 0;
  CK(apm_stream_write(nego, hdr, sizeof hdr, 0, sizeof hdr));
  CK(apm_stream_read(nego, &ack, 1, 0, 1, &got));
  if (got != 1) fail("ack", APM_E_IO);
  CK(apm_stream_close(nego));
}

static int nego_handshakes(int port, double secs, const char *user, const char *pw, const char *dom) {
  apm_credential *cred = NULL;
  CK(apm_credential_create(user, pw, dom, &cred));
  apm_stream *first = nego_connect(port, cred); /* warm-up, and which package Negotiate picks */
  nego_package(first);
  CK(apm_stream_close(first));
  uint64_t n = 0;
  double c0 = cpu_s(), t0 = now_s(), t;
  do {
    nego_once(port, cred);
    n++;
  } while ((t = now_s() - t0) < secs);
  RESULT((double)n / t, "auth/s");
  CPU(cpu_s() - c0);
  CK(apm_credential_close(cred));
  CK(apm_runtime_shutdown());
  return 0;
}

/* A server's accept loop: a listener on 127.0.0.1 (prints "ready PORT"), a detached thread running
 * `conn` for each accepted socket (TCP_NODELAY). */
_Noreturn static void serve_forever(void *(*conn)(void *)) {
  apm_socket *l = NULL;
  char addr[64];
  int32_t port = 0;
  CK(apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP, &l));
  CK(apm_socket_bind(l, "127.0.0.1", 0));
  CK(apm_socket_listen(l, 512));
  CK(apm_socket_get_local_endpoint(l, addr, sizeof addr, &port));
  printf("ready %d\n", (int)port);
  fflush(stdout);
  for (;;) {
    apm_socket *a = NULL;
    if (apm_socket_accept(l, &a) != APM_OK) continue;
    apm_socket_set_no_delay(a, 1);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, conn, a) != 0) apm_socket_close(a);
    pthread_attr_destroy(&at);
  }
}

static apm_credential *ns_users;

/* One connection of negoserver: authenticate, then sink (8-byte length, drain, 1-byte ack). */
static void *nego_serve(void *arg) {
  apm_socket *a = arg;
  apm_stream *ns = NULL, *nego = NULL;
  uint8_t *buf = malloc(256 * 1024);
  if (apm_network_stream_create(a, 1, &ns) != APM_OK || apm_negotiate_stream_create(ns, 0, &nego) != APM_OK)
    goto out;
  if (apm_negotiate_stream_authenticate_as_server(nego, ns_users, APM_POLICY_ENFORCEMENT_NEVER, NULL, 0, NULL, 0,
                                                  APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                  APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION) != APM_OK) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "negoserver: authentication failed: %s\n", msg);
    goto out;
  }
  for (;;) {
    unsigned char hdr[8];
    size_t got = 0, k = 0;
    while (got < 8) {
      if (apm_stream_read(nego, hdr, 8, got, 8 - got, &k) != APM_OK || k == 0) goto out;
      got += k;
    }
    uint64_t left = 0;
    for (int i = 7; i >= 0; i--) left = (left << 8) | hdr[i];
    while (left > 0) {
      size_t want = left < 256 * 1024 ? (size_t)left : 256 * 1024;
      if (apm_stream_read(nego, buf, 256 * 1024, 0, want, &k) != APM_OK || k == 0) goto out;
      left -= k;
    }
    uint8_t ack = 'k';
    if (apm_stream_write(nego, &ack, 1, 0, 1) != APM_OK) goto out;
  }
out:
  free(buf);
  if (nego) apm_stream_close(nego);
  else if (ns) apm_stream_close(ns);
  else apm_socket_close(a);
  return NULL;
}

_Noreturn static void nego_server(void) {
  CK(apm_credential_create("TESTDOM\\alice", "Passw0rd!", NULL, &ns_users));
  serve_forever(nego_serve);
}
#endif

/* ---------------------------------------------------------------- HttpWebRequest */
#ifdef APM_E_WEB
static const char *h_url, *h_ca;
static int h_conns;

/* One request in flight: create -> BeginGetResponse -> BeginRead until 0 -> close -> again. */
struct hslot {
  apm_http_request *req;
  apm_http_response *resp;
  apm_stream *body;
  int state; /* 0: start a request, 1: response pending, 2: reading the body */
  uint8_t buf[16 * 1024];
};
static _Atomic uint64_t h_done;
static atomic_int h_stop;

static void h_pump(struct hslot *h);

static apm_credential *h_cred;

static apm_http_request *h_request(const char *url) {
  apm_http_request *req = NULL;
  CK(apm_http_request_create(url, &req));
  if (h_cred) CK(apm_http_request_set_credential(req, h_cred));
  CK(apm_http_request_set_connection_limit(req, h_conns > 2 ? h_conns : 2));
  if (h_ca && !strcmp(h_ca, "accept"))
    CK(apm_http_request_set_validation_callback(req, accept_any, NULL));
  else if (h_ca)
    CK(apm_http_request_set_trusted_ca_file(req, h_ca));
  return req;
}

static void h_complete(struct hslot *h, apm_async_result *r) {
  if (h->state == 1) {
    CK(apm_http_request_end_get_response(h->req, r, &h->resp));
    CK(apm_http_response_get_response_stream(h->resp, &h->body));
    h->state = 2;
    return;
  }
  size_t n = 0;
  CK(apm_stream_end_read(h->body, r, &n));
  if (n > 0) return;
  CK(apm_stream_close(h->body));
  CK(apm_http_response_close(h->resp));
  CK(apm_http_request_close(h->req));
  h->body = NULL, h->resp = NULL, h->req = NULL;
  h->state = 0;
  atomic_fetch_add_explicit(&h_done, 1, memory_order_relaxed);
}

static void h_cb(apm_async_result *r, void *state) {
  if (was_sync(r)) return;
  h_complete(state, r);
  h_pump(state);
}

static void h_pump(struct hslot *h) {
  while (!atomic_load_explicit(&h_stop, memory_order_relaxed)) {
    apm_async_result *r = NULL;
    if (h->state == 0) {
      h->req = h_request(h_url);
      h->state = 1;
      CK(apm_http_request_begin_get_response(h->req, h_cb, h, &r));
    } else {
      CK(apm_stream_begin_read(h->body, h->buf, sizeof h->buf, 0, sizeof h->buf, h_cb, h, &r));
    }
    if (!was_sync(r)) return;
    h_complete(h, r);
  }
}

static int http_get(const char *url, int conns, double secs, double warm, const char *ca) {
  h_url = url, h_conns = conns, h_ca = strcmp(ca, "-") ? ca : NULL;
  if (getenv("BENCH_HTTP_USER"))
    CK(apm_credential_create(getenv("BENCH_HTTP_USER"), getenv("BENCH_HTTP_PASSWORD"), getenv("BENCH_HTTP_DOMAIN"), &h_cred));
  struct hslot *hs = calloc((size_t)conns, sizeof *hs);
  for (int i = 0; i < conns; i++) h_pump(&hs[i]);
  sleep_s(warm);
  uint64_t d0 = atomic_load(&h_done);
  double t0 = now_s(), c0 = cpu_s();
  sleep_s(secs);
  uint64_t d1 = atomic_load(&h_done);
  double t1 = now_s();
  RESULT((double)(d1 - d0) / (t1 - t0), "req/s");
  CPU(cpu_s() - c0);
  atomic_store(&h_stop, 1);
  fflush(stdout);
  _exit(0); /* requests in flight are left to process exit */
}

static int http_post(const char *url, uint64_t mib, size_t bufsz, const char *ca) {
  h_ca = strcmp(ca, "-") ? ca : NULL;
  bw.buf = malloc(bufsz);
  memset(bw.buf, 'p', bufsz);
  bw.bufsz = bufsz;
  uint64_t total = bw.left = mib << 20;
  sem_init(&bw.done, 0, 0);
  double c0 = cpu_s(), t0 = now_s();
  apm_http_request *req = h_request(url);
  apm_async_result *r = NULL;
  CK(apm_http_request_set_method(req, "POST"));
  CK(apm_http_request_set_header_property(req, "Content-Type", "application/octet-stream"));
  CK(apm_http_request_set_content_length(req, (int64_t)total));
  CK(apm_http_request_begin_get_request_stream(req, NULL, NULL, &r));
  CK(apm_http_request_end_get_request_stream(req, r, &bw.stream, NULL));
  bw_pump();
  while (sem_wait(&bw.done) != 0) {
  }
  CK(apm_stream_close(bw.stream));
  apm_http_response *resp = NULL;
  apm_stream *body = NULL;
  CK(apm_http_request_get_response(req, &resp));
  int32_t code = 0;
  CK(apm_http_response_get_status_code(resp, &code));
  if (code != 200) fail("POST status", APM_E_WEB);
  CK(apm_http_response_get_response_stream(resp, &body));
  uint8_t tmp[256];
  size_t n = 0;
  do CK(apm_stream_read(body, tmp, sizeof tmp, 0, sizeof tmp, &n));
  while (n > 0);
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  EXTRA("sync_fraction", (double)bw.sync / (double)bw.ops, "");
  CK(apm_stream_close(body));
  CK(apm_http_response_close(resp));
  CK(apm_http_request_close(req));
  CK(apm_runtime_shutdown());
  return 0;
}

/* ---- ntlmserver ---- */

static apm_credential *hn_users;
static apm_certificate *hn_cert;
static atomic_long hn_conns, hn_reqs;

/* The bytes read from a connection and not yet taken. */
struct hn_in {
  char buf[16384];
  size_t len, taken;
};

/* The next request head (no bodies: GETs only), NUL-terminated in place; NULL at the end. Reads
 * as much as arrives, so a head costs one read. */
static char *hn_head(apm_stream *s, struct hn_in *in) {
  memmove(in->buf, in->buf + in->taken, in->len - in->taken);
  in->len -= in->taken, in->taken = 0;
  for (;;) {
    char *end = in->len >= 4 ? memmem(in->buf, in->len, "\r\n\r\n", 4) : NULL;
    if (end) {
      in->taken = (size_t)(end - in->buf) + 4;
      end[2] = '\0';
      return in->buf;
    }
    size_t k = 0;
    if (in->len >= sizeof in->buf - 1) return NULL;
    if (apm_stream_read(s, (uint8_t *)in->buf, sizeof in->buf, in->len, sizeof in->buf - 1 - in->len, &k) != APM_OK || k == 0)
      return NULL;
    in->len += k;
  }
}

static int hn_answer(apm_stream *s, int code, const char *challenge, const char *body, size_t n) {
  char head[8192];
  int k = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n\r\n", code,
                   code == 200 ? "OK" : "Unauthorized", challenge ? "WWW-Authenticate: " : "",
                   challenge ? challenge : "", challenge ? "\r\n" : "", n);
  if (k < 0 || (size_t)k + n > sizeof head) return -1;
  memcpy(head + k, body, n);
  return apm_stream_write(s, (uint8_t *)head, sizeof head, 0, (size_t)k + n) == APM_OK ? 0 : -1;
}

static void *hn_serve(void *arg) {
  apm_socket *a = arg;
  apm_stream *ns = NULL, *tls = NULL;
  apm_transport_context *channel = NULL;
  apm_negotiate_authentication *auth = NULL;
  static char body[1024];
  struct hn_in *in = calloc(1, sizeof *in);
  char *head;
  memset(body, 'g', sizeof body);
  if (!in) goto out;
  if (apm_network_stream_create(a, 1, &ns) != APM_OK || apm_ssl_stream_create(ns, 0, &tls) != APM_OK) goto out;
  if (apm_ssl_stream_authenticate_as_server(tls, hn_cert, 0, APM_SSL_PROTOCOLS_NONE, 0) != APM_OK) goto out;
  if (apm_ssl_stream_get_transport_context(tls, &channel) != APM_OK) goto out;
  atomic_fetch_add(&hn_conns, 1);
  while ((head = hn_head(tls, in)) != NULL) {
    if (!strncmp(head, "GET /_stats ", 12)) {
      char text[96];
      int k = snprintf(text, sizeof text, "conns %ld reqs %ld", atomic_load(&hn_conns), atomic_load(&hn_reqs));
      hn_answer(tls, 200, NULL, text, (size_t)k);
      break; /* the runner asks on a connection of its own, with Connection: close */
    }
    char *token = strcasestr(head, "\r\nAuthorization: NTLM ");
    if (!token) {
      if (auth) apm_negotiate_authentication_close(auth), auth = NULL;
      if (hn_answer(tls, 401, "NTLM", "", 0) < 0) break;
      continue;
    }
    token += 22;
    char *end = strstr(token, "\r\n");
    unsigned char in[4096], out[4096];
    int inlen = EVP_DecodeBlock(in, (unsigned char *)token, (int)(end - token));
    if (inlen < 0) break;
    while (inlen > 0 && end > token && end[-1] == '=') inlen--, end--; /* DecodeBlock counts padding */
    if (!auth && apm_negotiate_authentication_create_server("NTLM", hn_users, channel, APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                                            APM_POLICY_ENFORCEMENT_ALWAYS, NULL, 0,
                                                            APM_PROTECTION_LEVEL_NONE, APM_TOKEN_IMPERSONATION_LEVEL_NONE,
                                                            &auth) != APM_OK)
      break;
    size_t outlen = 0;
    int32_t status = -1;
    if (apm_negotiate_authentication_get_outgoing_blob(auth, in, (size_t)inlen, out, sizeof out, &outlen, &status) != APM_OK)
      break;
    if (status == APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED) {
      char challenge[8192] = "NTLM ";
      EVP_EncodeBlock((unsigned char *)challenge + 5, out, (int)outlen);
      if (hn_answer(tls, 401, challenge, "", 0) < 0) break;
      continue;
    }
    apm_negotiate_authentication_close(auth), auth = NULL;
    if (status != APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED) {
      fprintf(stderr, "ntlmserver: refused (status %d)\n", (int)status);
      if (hn_answer(tls, 401, "NTLM", "", 0) < 0) break;
      continue;
    }
    atomic_fetch_add(&hn_reqs, 1);
    if (hn_answer(tls, 200, NULL, body, sizeof body) < 0) break;
  }
out:
  free(in);
  if (auth) apm_negotiate_authentication_close(auth);
  if (channel) apm_transport_context_close(channel);
  if (tls) apm_stream_close(tls);
  else if (ns) apm_stream_close(ns);
  else apm_socket_close(a);
  return NULL;
}

_Noreturn static void ntlm_server(const char *cert, const char *key) {
  CK(apm_credential_create("TESTDOM\\alice", "Passw0rd!", NULL, &hn_users));
  CK(apm_certificate_load_pem_file(cert, key, &hn_cert));
  serve_forever(hn_serve);
}
#endif

/* ---------------------------------------------------------------- latency */
static apm_socket *l_sock;
static _Atomic uint64_t l_t1, l_n;
static sem_t l_done;
static uint8_t l_buf[16];

static void l_cb(apm_async_result *r, void *state) {
  uint64_t t1 = now_ns(); /* the callback's first instruction */
  (void)state;
  size_t n = 0;
  CK(apm_socket_end_receive(l_sock, r, &n));
  atomic_store(&l_t1, t1);
  atomic_fetch_add(&l_n, 1);
  sem_post(&l_done);
}

static int latency(int samples) {
  int port, lfd = tcp_listen_any(&port);
  l_sock = connect_to(port);
  int peer = accept(lfd, NULL, NULL);
  if (peer < 0) die("accept");
  set_nodelay(peer);
  sem_init(&l_done, 0, 0);
  uint64_t *arr = malloc(sizeof(uint64_t) * (size_t)samples);
  uint64_t *beg = malloc(sizeof(uint64_t) * (size_t)samples);
  char one = '1';
  apm_async_result *r = NULL;
  for (int i = 0; i < samples; i++) { /* data arrival -> callback */
    CK(apm_socket_begin_receive(l_sock, l_buf, sizeof l_buf, 0, 1, l_cb, NULL, &r));
    sleep_gap_us(500, 1500);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    while (sem_wait(&l_done) != 0) {
    }
    arr[i] = atomic_load(&l_t1) - t0;
  }
  for (int i = 0; i < samples; i++) { /* Begin (nothing to read yet) -> callback */
    sleep_gap_us(500, 1500);
    uint64_t tb = now_ns();
    CK(apm_socket_begin_receive(l_sock, l_buf, sizeof l_buf, 0, 1, l_cb, NULL, &r));
    if (write(peer, &one, 1) != 1) die("write");
    while (sem_wait(&l_done) != 0) {
    }
    beg[i] = atomic_load(&l_t1) - tb;
  }
  uint64_t *hot = malloc(sizeof(uint64_t) * (size_t)samples), last = now_ns();
  for (int i = 0; i < samples; i++) { /* hot: the next byte HOT_GAP_NS after the last callback */
    uint64_t n0 = atomic_load(&l_n);
    CK(apm_socket_begin_receive(l_sock, l_buf, sizeof l_buf, 0, 1, l_cb, NULL, &r));
    spin_until_ns(last + HOT_GAP_NS);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    while (atomic_load(&l_n) == n0) cpu_relax();
    last = now_ns();
    hot[i] = atomic_load(&l_t1) - t0;
  }
  RESULT(percentile(arr, (size_t)samples, 50) / 1e3, "us");
  EXTRA("p99", percentile(arr, (size_t)samples, 99) / 1e3, "us");
  EXTRA("begin_p50", percentile(beg, (size_t)samples, 50) / 1e3, "us");
  EXTRA("begin_p99", percentile(beg, (size_t)samples, 99) / 1e3, "us");
  EXTRA("hot_p50", percentile(hot, (size_t)samples, 50) / 1e3, "us");
  EXTRA("hot_p99", percentile(hot, (size_t)samples, 99) / 1e3, "us");
  CK(apm_socket_close(l_sock));
  CK(apm_runtime_shutdown());
  return 0;
}

/* ---------------------------------------------------------------- memory */
static apm_stream *open_idle(int port) {
  apm_socket *s = connect_to(port);
  CK(apm_socket_set_linger(s, 1, 0)); /* close with RST: no TIME_WAIT for 10,000 ports */
  apm_stream *ns = NULL;
  CK(apm_network_stream_create(s, 1, &ns));
  return ns;
}

static int memory(int port, int conns) {
  raise_nofile();
  static uint8_t buf[1];
  apm_async_result *r = NULL;
  apm_stream *warm = open_idle(port); /* starts the runtime */
  CK(apm_stream_begin_read(warm, buf, 1, 0, 1, NULL, NULL, &r));
  apm_stream **ss = malloc(sizeof *ss * (size_t)conns);
  memset(ss, 0, sizeof *ss * (size_t)conns);
  long r0 = rss_bytes();
  for (int i = 0; i < conns; i++) ss[i] = open_idle(port);
  long r1 = rss_bytes();
  for (int i = 0; i < conns; i++) CK(apm_stream_begin_read(ss[i], buf, 1, 0, 1, NULL, NULL, &r));
  long r2 = rss_bytes();
  RESULT((double)(r1 - r0) / conns, "B/conn");
  EXTRA("pending", (double)(r2 - r1) / conns, "B/op");
  fflush(stdout);
  _exit(0);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *spin = getenv("BENCH_APM_SPIN_US");
  if (spin && *spin) CK(apm_runtime_configure(0, atoi(spin)));
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "write") && argc == 5)
    return bulk_write(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10));
  if (!strcmp(m, "sendfile") && argc == 4) return bulk_sendfile(atoi(argv[2]), argv[3]);
  if (!strcmp(m, "tls") && argc == 5) {
#ifdef APM_SSL_PROTOCOLS_TLS13
    return bulk_tls(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10));
#else
    fprintf(stderr, "SslStream not landed: include/apmnet.h has no apm_ssl_stream_*\n");
    return 3;
#endif
  }
  if (!strcmp(m, "handshake") && argc == 6) {
#ifdef APM_SSL_PROTOCOLS_TLS13
    return handshakes(atoi(argv[2]), atof(argv[3]), argv[4], argv[5]);
#else
    fprintf(stderr, "SslStream not landed: include/apmnet.h has no apm_ssl_stream_*\n");
    return 3;
#endif
  }
  if (!strcmp(m, "echo") && argc == 7)
    return echo_client(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), strtoul(argv[5], 0, 10),
                       atof(argv[6]));
  if (!strcmp(m, "latency") && argc == 3) return latency(atoi(argv[2]));
#ifdef APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN
  if (!strcmp(m, "negoserver") && argc == 2) nego_server();
  if (!strcmp(m, "nego") && argc == 8)
    return nego_write(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10), argv[5], argv[6], argv[7]);
  if (!strcmp(m, "negohs") && argc == 7) return nego_handshakes(atoi(argv[2]), atof(argv[3]), argv[4], argv[5], argv[6]);
#endif
#ifdef APM_E_WEB
  if (!strcmp(m, "httpget") && argc == 7)
    return http_get(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]), argv[6]);
  if (!strcmp(m, "httppost") && argc == 6) return http_post(argv[2], strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10), argv[5]);
  if (!strcmp(m, "ntlmserver") && argc == 4) ntlm_server(argv[2], argv[3]);
#endif
  if (!strcmp(m, "memory") && argc == 4) return memory(atoi(argv[2]), atoi(argv[3]));
  fprintf(stderr, "usage: see the comment at the top of apm.c\n");
  return 2;
}
