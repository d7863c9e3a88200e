/* A stand-in for libvibesync_adapter_sdk with the C ABI of
   docs/adapter-api.md and no network: sessions, a command queue per session,
   replies and busy state kept in process memory. It exists to test the C#
   P/Invoke binding (signatures, UTF-8, vs_string_free ownership, errors) and
   the domain-reload re-attach (native state outlives an AppDomain) without
   the real SDK. The fake_* exports let the test drive it. Test-only: built
   by Tests~/run.sh into a temporary directory, never shipped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 8
#define MAX_QUEUE 64

typedef struct {
    char name[64];
    uint64_t handle;
    int open;
    char *queue[MAX_QUEUE];
    int head, len;
    int replies;
    char last_reply[4096];
    char busy[256];
    int busy_set;
} session;

static session sessions[MAX_SESSIONS];
static uint64_t next_handle = 100;
static int opens, live_strings;
static __thread char last_error[256];

static session *by_handle(uint64_t h) {
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open && sessions[i].handle == h) return &sessions[i];
    snprintf(last_error, sizeof last_error, "no session with handle %llu", (unsigned long long)h);
    return NULL;
}

static char *owned(const char *s) {
    live_strings++;
    return strdup(s);
}

uint64_t vs_find(const char *engine) {
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open && strcmp(sessions[i].name, engine) == 0) return sessions[i].handle;
    return 0;
}

uint64_t vs_open(const char *pairing, const char *engine, const char *kind) {
    uint64_t h = vs_find(engine);
    if (h) return h;
    if (!pairing || !*pairing) {
        snprintf(last_error, sizeof last_error, "pairing file \"\" cannot be read: run `vibesync init` (kind %s)", kind);
        return 0;
    }
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (sessions[i].open) continue;
        memset(&sessions[i], 0, sizeof sessions[i]);
        snprintf(sessions[i].name, sizeof sessions[i].name, "%s", engine);
        sessions[i].handle = next_handle++;
        sessions[i].open = 1;
        opens++;
        return sessions[i].handle;
    }
    snprintf(last_error, sizeof last_error, "too many sessions");
    return 0;
}

char *vs_poll(uint64_t h) {
    session *s = by_handle(h);
    if (!s || s->len == 0) return NULL;
    char *cmd = s->queue[s->head];
    s->head = (s->head + 1) % MAX_QUEUE;
    s->len--;
    char *out = owned(cmd);
    free(cmd);
    return out;
}

int32_t vs_reply(uint64_t h, const char *json) {
    session *s = by_handle(h);
    if (!s) return -1;
    s->replies++;
    snprintf(s->last_reply, sizeof s->last_reply, "%s", json);
    return 0;
}

int32_t vs_push_event(uint64_t h, const char *json) { return by_handle(h) && json ? 0 : -1; }

int32_t vs_set_busy(uint64_t h, const char *reason) {
    session *s = by_handle(h);
    if (!s) return -1;
    s->busy_set = reason != NULL;
    snprintf(s->busy, sizeof s->busy, "%s", reason ? reason : "");
    return 0;
}

char *vs_status(uint64_t h) {
    session *s = by_handle(h);
    if (!s) return NULL;
    char buf[512];
    snprintf(buf, sizeof buf, "{\"state\":\"connected\",\"panic\":false,\"panic_reason\":null,\"engine\":\"%s\",\"queue_depth\":%d}", s->name, s->len);
    return owned(buf);
}

int32_t vs_close(uint64_t h) {
    session *s = by_handle(h);
    if (!s) return -1;
    while (s->len) { free(s->queue[s->head]); s->head = (s->head + 1) % MAX_QUEUE; s->len--; }
    s->open = 0;
    return 0;
}

const char *vs_last_error(void) { return last_error[0] ? last_error : NULL; }

void vs_string_free(char *p) {
    if (!p) return;
    live_strings--;
    free(p);
}

/* ---- test controls ---- */
int32_t fake_enqueue(uint64_t h, const char *json) {
    session *s = by_handle(h);
    if (!s || s->len == MAX_QUEUE) return -1;
    s->queue[(s->head + s->len) % MAX_QUEUE] = strdup(json);
    s->len++;
    return 0;
}
int32_t fake_replies(uint64_t h) { session *s = by_handle(h); return s ? s->replies : -1; }
const char *fake_last_reply(uint64_t h) { session *s = by_handle(h); return s ? s->last_reply : NULL; }
const char *fake_busy(uint64_t h) { session *s = by_handle(h); return s && s->busy_set ? s->busy : NULL; }
int32_t fake_opens(void) { return opens; }
int32_t fake_live_strings(void) { return live_strings; }
