/* servers.c: the counterparts every benchmarked client talks to (loopback only).
 *
 *   servers sink     [PORT]                 one thread per connection: read an 8-byte little-endian
 *                                           length, drain that many bytes with 256 KiB reads, reply
 *                                           1 byte; repeat until EOF.
 *   servers echo     [PORT]                 single-threaded epoll echo server, TCP_NODELAY.
 *   servers tlssink  CERT KEY [PORT]        sink behind OpenSSL 3 (TLS 1.2 and 1.3; TLS 1.3 limited
 *                                           to TLS_AES_128_GCM_SHA256 unless BENCH_TLS13_SUITES says
 *                                           otherwise, so every client runs the same cipher).
 *   servers tlshello CERT KEY [PORT]        per connection: a TLS handshake (1.2 or 1.3, the cipher of
 *                                           tlssink), one byte written ('r' when the session was
 *                                           resumed, else 'f'), then reads to EOF. Sessions resume:
 *                                           a session cache and tickets (one per handshake, sent
 *                                           before the byte, so a client that reads it has it).
 *   servers http     [PORT]                 HTTP/1.1 keep-alive, one thread per connection: GET and HEAD
 *                                           get a 1 KiB body with Content-Length; POST and PUT bodies
 *                                           (Content-Length or chunked) are drained and get a 2-byte
 *                                           "ok"; "Expect: 100-continue" is answered at once. GET
 *                                           /_stats answers "conns N reqs M": the connections that
 *                                           carried a request and the requests served (itself
 *                                           excluded), so a runner can check keep-alive reuse.
 *   servers https    CERT KEY [PORT]        the same behind OpenSSL 3 (the cipher of tlssink).
 *   servers gencert  CERT KEY               write a self-signed RSA-2048 certificate for CN=localhost
 *                                           (subjectAltName DNS:localhost and IP:127.0.0.1, so https
 *                                           clients can verify it for https://127.0.0.1:PORT/).
 *
 * Each server binds 127.0.0.1 (port 0 = any free port), prints "ready PORT" on stdout and runs
 * until killed. Servers raise RLIMIT_NOFILE to the hard limit (the memory benchmark opens 10,000
 * connections).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>

#define DRAIN_CHUNK (256 * 1024)

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static uint64_t le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
  return v;
}

static void spawn(void *(*fn)(void *), void *arg) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 256 * 1024);
  pthread_t t;
  if (pthread_create(&t, &at, fn, arg) != 0) {
    perror("pthread_create");
    close((int)(intptr_t)arg);
  }
  pthread_attr_destroy(&at);
}

/* ---------------------------------------------------------------- sink */

static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 1;
}

static void *sink_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char *buf = malloc(DRAIN_CHUNK);
  unsigned char hdr[8];
  while (buf && read_full(fd, hdr, 8) == 1) {
    uint64_t left = le64(hdr);
    while (left > 0) {
      ssize_t r = read(fd, buf, left < DRAIN_CHUNK ? left : DRAIN_CHUNK);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) goto out;
      left -= (uint64_t)r;
    }
    char ack = 'k';
    if (write(fd, &ack, 1) != 1) break;
  }
out:
  free(buf);
  close(fd);
  return NULL;
}

_Noreturn static void run_sink(int port) {
  int lfd = listen_on(port);
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      die("accept");
    }
    spawn(sink_conn, (void *)(intptr_t)fd);
  }
}

/* ---------------------------------------------------------------- echo */

struct econn {
  int fd;
  size_t out_len, out_off; /* bytes not yet echoed back (partial writes) */
  char out[16 * 1024];
};

_Noreturn static void run_echo(int port) {
  int lfd = listen_on(port);
  fcntl(lfd, F_SETFL, O_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct econn *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = malloc(sizeof *c);
          c->fd = fd;
          c->out_len = c->out_off = 0;
          struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      int dead = 0;
      if (c->out_len > c->out_off) { /* flush what a partial write left behind */
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && errno != EAGAIN) dead = 1;
        if (w > 0) c->out_off += (size_t)w;
      }
      if (!dead && c->out_len == c->out_off) {
        c->out_len = c->out_off = 0;
        ssize_t r = read(c->fd, c->out, sizeof c->out);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          dead = 1;
        } else if (r > 0) {
          ssize_t w = write(c->fd, c->out, (size_t)r);
          if (w < 0 && errno != EAGAIN) dead = 1;
          c->out_len = (size_t)r;
          c->out_off = w > 0 ? (size_t)w : 0;
        }
      }
      if (!dead) {
        uint32_t want = (c->out_len > c->out_off ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP;
        struct epoll_event e = {.events = want, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
      }
      if (dead || ((evs[i].events & (EPOLLHUP | EPOLLERR)) && c->out_len == c->out_off)) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c);
      }
    }
  }
}

/* ---------------------------------------------------------------- tlssink */

static SSL_CTX *g_ctx;

static int ssl_read_full(SSL *ssl, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    int r = SSL_read(ssl, (char *)buf + got, (int)(n - got));
    if (r <= 0) return 0;
    got += (size_t)r;
  }
  return 1;
}

static void *tls_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  SSL *ssl = SSL_new(g_ctx);
  char *buf = malloc(DRAIN_CHUNK);
  unsigned char hdr[8];
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) goto out;
  while (ssl_read_full(ssl, hdr, 8)) {
    uint64_t left = le64(hdr);
    while (left > 0) {
      int r = SSL_read(ssl, buf, (int)(left < DRAIN_CHUNK ? left : DRAIN_CHUNK));
      if (r <= 0) goto out;
      left -= (uint64_t)r;
    }
    char ack = 'k';
    if (SSL_write(ssl, &ack, 1) != 1) break;
  }
out:
  ERR_clear_error();
  SSL_free(ssl);
  free(buf);
  close(fd);
  return NULL;
}

static void *hello_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  SSL *ssl = SSL_new(g_ctx);
  char buf[256];
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL_set_fd(ssl, fd);
  /* The byte says whether the session was resumed ('r') or not ('f'), for every client alike. */
  if (SSL_accept(ssl) == 1 && SSL_write(ssl, SSL_session_reused(ssl) ? "r" : "f", 1) == 1) {
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
  }
  /* As a client that closes without close_notify: the session stays resumable. */
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  return NULL;
}

/* The servers' TLS context: TLS 1.2 and 1.3 (one TLS 1.3 cipher unless BENCH_TLS13_SUITES says
 * otherwise); tlssink and https without resumption, tlshello with a session cache and tickets.
 * NULL (errors printed) when the certificate or key does not load. */
static SSL_CTX *tls_context(const char *cert, const char *key, int resume) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  const char *suites = getenv("BENCH_TLS13_SUITES");
  SSL_CTX_set_ciphersuites(ctx, suites && *suites ? suites : "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_session_cache_mode(ctx, resume ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, resume ? 1 : 0);
  if (resume) SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Accepts forever, a thread per connection running conn(fd). */
_Noreturn static void accept_loop(int port, void *(*conn)(void *)) {
  int lfd = listen_on(port);
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      die("accept");
    }
    spawn(conn, (void *)(intptr_t)fd);
  }
}

static int run_tls(const char *cert, const char *key, int port, int resume, void *(*conn)(void *)) {
  if (!(g_ctx = tls_context(cert, key, resume))) return 1;
  accept_loop(port, conn);
}

/* ---------------------------------------------------------------- http, https */

/* A server cheap enough not to be the limit: one parse of the head from a 64 KiB buffer, one
 * write per response, bodies drained in 256 KiB reads. */
static SSL_CTX *g_http_ctx; /* NULL: plain http */
static atomic_long g_http_conns, g_http_reqs;
static char g_get_body[1024];

struct hconn {
  int fd;
  SSL *ssl;
  size_t off, len;
  char buf[64 * 1024];
};

static ssize_t h_recv(struct hconn *c, void *p, size_t n) {
  if (c->ssl) {
    int r = SSL_read(c->ssl, p, (int)(n > 1 << 30 ? 1 << 30 : n));
    return r > 0 ? r : -1;
  }
  for (;;) {
    ssize_t r = read(c->fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    return r > 0 ? r : -1;
  }
}

static int h_send(struct hconn *c, const void *p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w;
    if (c->ssl) {
      int r = SSL_write(c->ssl, (const char *)p + done, (int)(n - done));
      w = r > 0 ? r : -1;
    } else {
      w = write(c->fd, (const char *)p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
    }
    if (w <= 0) return -1;
    done += (size_t)w;
  }
  return 0;
}

/* More bytes into the buffer (compacting it first); -1 at EOF, on an error or a full buffer. */
static int h_fill(struct hconn *c) {
  if (c->off > 0) {
    memmove(c->buf, c->buf + c->off, c->len - c->off);
    c->len -= c->off;
    c->off = 0;
  }
  if (c->len == sizeof c->buf) return -1;
  ssize_t r = h_recv(c, c->buf + c->len, sizeof c->buf - c->len);
  if (r <= 0) return -1;
  c->len += (size_t)r;
  return 0;
}

/* The next line (CRLF cut off, NUL-terminated in place); NULL when the connection ended. */
static char *h_line(struct hconn *c) {
  for (;;) {
    char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
    if (nl) {
      char *line = c->buf + c->off;
      c->off = (size_t)(nl - c->buf) + 1;
      if (nl > line && nl[-1] == '\r') nl--;
      *nl = '\0';
      return line;
    }
    if (h_fill(c) < 0) return NULL;
  }
}

/* Discards n body bytes: what is buffered, then straight reads into `drain`. */
static int h_skip(struct hconn *c, uint64_t n, char *drain) {
  size_t have = c->len - c->off;
  size_t take = n < have ? (size_t)n : have;
  c->off += take;
  n -= take;
  while (n > 0) {
    ssize_t r = h_recv(c, drain, n < DRAIN_CHUNK ? (size_t)n : DRAIN_CHUNK);
    if (r <= 0) return -1;
    n -= (uint64_t)r;
  }
  return 0;
}

static int h_chunked(struct hconn *c, char *drain) {
  for (;;) {
    char *line = h_line(c), *end = NULL;
    if (!line) return -1;
    unsigned long long size = strtoull(line, &end, 16);
    if (end == line) return -1;
    if (size == 0) break;
    if (h_skip(c, size, drain) < 0) return -1;
    line = h_line(c); /* the CRLF after the data */
    if (!line || *line) return -1;
  }
  for (;;) { /* trailers, up to the empty line */
    char *line = h_line(c);
    if (!line) return -1;
    if (!*line) return 0;
  }
}

static void *http_conn(void *arg) {
  int fd = (int)(intptr_t)arg, counted = 0;
  struct hconn *c = malloc(sizeof *c);
  char *drain = malloc(DRAIN_CHUNK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!c || !drain) goto out;
  c->fd = fd;
  c->ssl = NULL;
  c->off = c->len = 0;
  if (g_http_ctx) {
    c->ssl = SSL_new(g_http_ctx);
    SSL_set_fd(c->ssl, fd);
    if (SSL_accept(c->ssl) != 1) goto out;
  }
  for (;;) {
    char *line = h_line(c), method[16], target[256];
    if (!line || sscanf(line, "%15s %255s", method, target) != 2) break;
    uint64_t length = 0;
    int chunked = 0, expect = 0, close_after = strstr(line, "HTTP/1.0") != NULL;
    while ((line = h_line(c)) && *line) {
      char *colon = strchr(line, ':');
      if (!colon) continue;
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (!strcasecmp(line, "Content-Length")) length = strtoull(v, NULL, 10);
      else if (!strcasecmp(line, "Transfer-Encoding")) chunked = strcasestr(v, "chunked") != NULL;
      else if (!strcasecmp(line, "Expect")) expect = strcasestr(v, "100-continue") != NULL;
      else if (!strcasecmp(line, "Connection")) {
        if (strcasestr(v, "close")) close_after = 1;
        else if (strcasestr(v, "keep-alive")) close_after = 0;
      }
    }
    if (!line) break;
    int body = chunked || length > 0;
    if (body && expect && h_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) break;
    if (chunked ? h_chunked(c, drain) < 0 : h_skip(c, length, drain) < 0) break;
    char head[256];
    int n;
    if (!strcmp(target, "/_stats")) {
      char text[96];
      int k = snprintf(text, sizeof text, "conns %ld reqs %ld", atomic_load(&g_http_conns),
                       atomic_load(&g_http_reqs));
      n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", k, text);
      if (h_send(c, head, (size_t)n) < 0 || close_after) break;
      continue;
    }
    if (!counted) {
      counted = 1;
      atomic_fetch_add(&g_http_conns, 1);
    }
    atomic_fetch_add(&g_http_reqs, 1);
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    static const char ok_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n";
    static const char get_head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n";
    n = snprintf(head, sizeof head, "%s%s\r\n", get ? get_head : ok_head,
                 close_after ? "Connection: close\r\n" : "");
    /* One write per response: the head and the body together. */
    char out[256 + sizeof g_get_body];
    memcpy(out, head, (size_t)n);
    size_t total = (size_t)n;
    if (get && strcmp(method, "HEAD")) {
      memcpy(out + total, g_get_body, sizeof g_get_body);
      total += sizeof g_get_body;
    } else if (!get) {
      memcpy(out + total, "ok", 2);
      total += 2;
    }
    if (h_send(c, out, total) < 0 || close_after) break;
  }
out:
  if (c && c->ssl) {
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    ERR_clear_error();
    SSL_free(c->ssl);
  }
  free(c);
  free(drain);
  close(fd);
  return NULL;
}

static int run_http(const char *cert, const char *key, int port) {
  memset(g_get_body, 'g', sizeof g_get_body);
  if (cert && !(g_http_ctx = tls_context(cert, key, 0))) return 1;
  accept_loop(port, http_conn);
}

static int gencert(const char *cert_path, const char *key_path) {
  EVP_PKEY *pkey = EVP_RSA_gen(2048);
  X509 *x = X509_new();
  if (!pkey || !x) goto fail;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7L * 24 * 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  if (!san || !X509_add_ext(x, san, -1)) goto fail;
  X509_EXTENSION_free(san);
  if (!X509_sign(x, pkey, EVP_sha256())) goto fail;
  FILE *f = fopen(key_path, "w");
  if (!f || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)) goto fail;
  fclose(f);
  f = fopen(cert_path, "w");
  if (!f || !PEM_write_X509(f, x)) goto fail;
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return 0;
fail:
  ERR_print_errors_fp(stderr);
  return 1;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  if (argc >= 2 && !strcmp(argv[1], "sink")) run_sink(argc > 2 ? atoi(argv[2]) : 0);
  if (argc >= 2 && !strcmp(argv[1], "echo")) run_echo(argc > 2 ? atoi(argv[2]) : 0);
  if (argc >= 4 && !strcmp(argv[1], "tlssink"))
    return run_tls(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 0, 0, tls_conn);
  if (argc >= 4 && !strcmp(argv[1], "tlshello"))
    return run_tls(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 0, 1, hello_conn);
  if (argc >= 2 && !strcmp(argv[1], "http")) return run_http(NULL, NULL, argc > 2 ? atoi(argv[2]) : 0);
  if (argc >= 4 && !strcmp(argv[1], "https"))
    return run_http(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 0);
  if (argc == 4 && !strcmp(argv[1], "gencert")) return gencert(argv[2], argv[3]);
  fprintf(stderr,
          "usage: servers sink [PORT] | echo [PORT] | tlssink CERT KEY [PORT] | tlshello CERT KEY [PORT] | "
          "http [PORT] | https CERT KEY [PORT] | gencert CERT KEY\n");
  return 2;
}
