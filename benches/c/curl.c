/* curl.c: the libcurl rows (Debian libcurl4-openssl-dev), the HTTP client C programs would
 * otherwise pick, against the same http/https servers as the apmnet and .NET 8 clients.
 *
 *   curl get  URL CONNS SECS WARM CA   GETs with keep-alive: one easy handle reused (CONNS 1), or
 *                                      the multi interface with CONNS easy handles in flight, each
 *                                      re-added when done (connections cached by the multi handle)
 *   curl post URL MIB BUF CA           one POST of MIB MiB (CURLOPT_POSTFIELDSIZE_LARGE), the body
 *                                      handed over by a read callback in BUF-byte pieces
 *
 * CA ("-": none) is the only trusted certificate for https (CURLOPT_CAINFO). Output: RESULT, CPU
 * and EXTRA lines as the other clients print them.
 */
#include "common.h"

#include <curl/curl.h>

static void ck(CURLcode c, const char *what) {
  if (c != CURLE_OK) {
    fprintf(stderr, "%s: %s\n", what, curl_easy_strerror(c));
    exit(1);
  }
}

/* The body is counted, not kept. */
static size_t discard(char *p, size_t size, size_t n, void *state) {
  (void)p, (void)state;
  return size * n;
}

static CURL *easy(const char *url, const char *ca) {
  CURL *e = curl_easy_init();
  if (!e) die("curl_easy_init");
  ck(curl_easy_setopt(e, CURLOPT_URL, url), "URL");
  ck(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard), "WRITEFUNCTION");
  ck(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L), "NOSIGNAL");
  ck(curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L), "TCP_NODELAY");
  if (strcmp(ca, "-")) ck(curl_easy_setopt(e, CURLOPT_CAINFO, ca), "CAINFO");
  return e;
}

static void check_status(CURL *e) {
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    fprintf(stderr, "status %ld\n", code);
    exit(1);
  }
}

/* The timed window of a GET run: WARM seconds of warm-up, then SECS counted. */
struct window {
  double secs, warm, start, t0, c0;
  uint64_t n0;
  int timing;
};

/* Called after each completion with the count so far; prints the result and returns 1 once the
 * window is over. */
static int window_done(struct window *w, uint64_t n) {
  double t = now_s();
  if (!w->timing && t - w->start >= w->warm) {
    w->timing = 1;
    w->n0 = n;
    w->t0 = t;
    w->c0 = cpu_s();
  } else if (w->timing && t - w->t0 >= w->secs) {
    RESULT((double)(n - w->n0) / (t - w->t0), "req/s");
    CPU(cpu_s() - w->c0);
    return 1;
  }
  return 0;
}

static int get_one(const char *url, double secs, double warm, const char *ca) {
  CURL *e = easy(url, ca);
  struct window w = {secs, warm, now_s(), 0, 0, 0, 0};
  uint64_t n = 0;
  do {
    ck(curl_easy_perform(e), "perform");
    check_status(e);
    n++;
  } while (!window_done(&w, n));
  curl_easy_cleanup(e);
  return 0;
}

static int get_multi(const char *url, int conns, double secs, double warm, const char *ca) {
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
  for (int i = 0; i < conns; i++) curl_multi_add_handle(m, easy(url, ca));
  struct window w = {secs, warm, now_s(), 0, 0, 0, 0};
  uint64_t n = 0;
  int running = 0;
  for (;;) {
    if (curl_multi_perform(m, &running) != CURLM_OK) die("curl_multi_perform");
    CURLMsg *msg;
    int left, readded = 0;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      ck(msg->data.result, "transfer");
      check_status(e);
      n++;
      curl_multi_remove_handle(m, e);
      curl_multi_add_handle(m, e); /* the same request again, on a cached connection */
      readded = 1;
    }
    if (window_done(&w, n)) break;
    /* A re-added handle starts in curl_multi_perform: poll only when nothing was re-added. */
    if (!readded && curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) die("curl_multi_poll");
  }
  fflush(stdout);
  _exit(0); /* transfers in flight are left to process exit */
}

static struct {
  char *buf;
  size_t bufsz;
  uint64_t left;
} body;

static size_t produce(char *p, size_t size, size_t n, void *state) {
  (void)state;
  size_t k = size * n;
  if (k > body.bufsz) k = body.bufsz;
  if (k > body.left) k = (size_t)body.left;
  memcpy(p, body.buf, k);
  body.left -= k;
  return k;
}

static int post(const char *url, uint64_t mib, size_t bufsz, const char *ca) {
  uint64_t total = body.left = mib << 20;
  body.buf = malloc(bufsz);
  memset(body.buf, 'p', bufsz);
  body.bufsz = bufsz;
  double c0 = cpu_s(), t0 = now_s();
  CURL *e = easy(url, ca);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  ck(curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs), "HTTPHEADER");
  ck(curl_easy_setopt(e, CURLOPT_POST, 1L), "POST");
  ck(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)total), "POSTFIELDSIZE_LARGE");
  ck(curl_easy_setopt(e, CURLOPT_READFUNCTION, produce), "READFUNCTION");
  /* curl_easy_setopt clamps it to its limits; 64 KiB is the default of 7.88 anyway. */
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)bufsz);
  ck(curl_easy_perform(e), "perform");
  check_status(e);
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(e);
  return 0;
}

int main(int argc, char **argv) {
  curl_global_init(CURL_GLOBAL_ALL);
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "get") && argc == 7) {
    int conns = atoi(argv[3]);
    return conns <= 1 ? get_one(argv[2], atof(argv[4]), atof(argv[5]), argv[6])
                      : get_multi(argv[2], conns, atof(argv[4]), atof(argv[5]), argv[6]);
  }
  if (!strcmp(m, "post") && argc == 6) return post(argv[2], strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10), argv[5]);
  fprintf(stderr, "usage: see the comment at the top of curl.c\n");
  return 2;
}
