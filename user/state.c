// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The state dir: per-rollout status files and the audit log. Status files
 * are written to a temporary name and renamed over the old one, so a reader
 * (the CLI) or a crash never sees half a file. The audit log is appended
 * with O_APPEND, one write per line, so lines never interleave.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json_util.h"
#include "log.h"
#include "state.h"

uint64_t now_unix_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void unix_ms_format(uint64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int mkdirs(const char *dir)
{
	char sub[PATH_MAX];

	if (mkdir(dir, 0755) && errno != EEXIST) {
		/* one level of parents is all a default like /var/lib/sluice needs */
		char parent[PATH_MAX], *slash;

		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			mkdir(parent, 0755);
		}
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
	}
	snprintf(sub, sizeof(sub), "%s/rollouts", dir);
	if (mkdir(sub, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static void record_path(const char *dir, const char *name, char *buf, size_t len)
{
	char file[STATE_NAME_MAX];

	/* "ns/name" -> "ns.name": neither part may hold a dot (DNS-1123 labels) */
	snprintf(file, sizeof(file), "%s", name);
	for (char *p = file; *p; p++)
		if (*p == '/')
			*p = '.';
	snprintf(buf, len, "%s/rollouts/%s.json", dir, file);
}

cJSON *window_json(const struct window_metrics *w)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "has_data", w->has_data);
	cJSON_AddStringToObject(o, "basis", w->http ? "requests" : "connections");
	cJSON_AddNumberToObject(o, "total", (double)w->total);
	cJSON_AddNumberToObject(o, "failed", (double)w->failed);
	if (w->has_data)
		cJSON_AddNumberToObject(o, "success_rate_pct", w->success_rate_pct);
	if (w->has_latency) {
		cJSON_AddNumberToObject(o, "latency_p50_ms", w->latency_p50_ms);
		cJSON_AddNumberToObject(o, "latency_p99_ms", w->latency_p99_ms);
	}
	return o;
}

static void window_from_json(const cJSON *o, struct window_metrics *w)
{
	const cJSON *v;

	memset(w, 0, sizeof(*w));
	if (!o)
		return;
	w->has_data = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "has_data"));
	v = cJSON_GetObjectItemCaseSensitive(o, "basis");
	w->http = cJSON_IsString(v) && !strcmp(v->valuestring, "requests");
	w->total = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "total"));
	w->failed = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "failed"));
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "success_rate_pct")))
		w->success_rate_pct = v->valuedouble;
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "latency_p99_ms"))) {
		w->has_latency = true;
		w->latency_p99_ms = v->valuedouble;
		v = cJSON_GetObjectItemCaseSensitive(o, "latency_p50_ms");
		w->latency_p50_ms = v ? v->valuedouble : 0;
	}
}

static cJSON *record_json(const struct rollout_record *r)
{
	cJSON *o = cJSON_CreateObject();
	char rev[24], t[40];

	cJSON_AddStringToObject(o, "name", r->name);
	snprintf(rev, sizeof(rev), "%016llx", (unsigned long long)r->revision);
	cJSON_AddStringToObject(o, "revision", rev);
	cJSON_AddNumberToObject(o, "attempt", r->attempt);
	cJSON_AddStringToObject(o, "phase", phase_name(r->st.phase));
	cJSON_AddNumberToObject(o, "weight_bp", r->st.weight_bp);
	cJSON_AddNumberToObject(o, "failed_checks", r->st.failed_checks);
	cJSON_AddNumberToObject(o, "threshold", r->threshold);
	cJSON_AddNumberToObject(o, "iterations", r->st.iterations);
	cJSON_AddBoolToObject(o, "paused", r->st.paused);
	cJSON_AddBoolToObject(o, "manual_weight", r->st.manual);
	cJSON_AddNumberToObject(o, "max_weight_bp", r->max_weight_bp);
	cJSON_AddNumberToObject(o, "interval_ms", (double)r->interval_ms);
	cJSON_AddStringToObject(o, "primary_version", r->primary_version);
	cJSON_AddStringToObject(o, "canary_version", r->canary_version);
	unix_ms_format(r->started_unix_ms, t, sizeof(t));
	cJSON_AddStringToObject(o, "started", t);
	cJSON_AddNumberToObject(o, "started_unix_ms", (double)r->started_unix_ms);
	unix_ms_format(r->updated_unix_ms, t, sizeof(t));
	cJSON_AddStringToObject(o, "updated", t);
	cJSON_AddNumberToObject(o, "updated_unix_ms", (double)r->updated_unix_ms);
	cJSON_AddNumberToObject(o, "decided_unix_ms", (double)r->decided_unix_ms);
	cJSON_AddStringToObject(o, "last_action", r->last_action);
	cJSON_AddStringToObject(o, "last_reason", r->last_reason);
	if (r->has_last) {
		cJSON *m = cJSON_AddObjectToObject(o, "last_window");

		cJSON_AddItemToObject(m, "canary", window_json(&r->last_canary));
		cJSON_AddItemToObject(m, "primary", window_json(&r->last_primary));
	}
	return o;
}

static void copy_str(char *dst, size_t len, const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	snprintf(dst, len, "%s", s ? s : "");
}

static int record_from_json(const cJSON *o, struct rollout_record *r)
{
	const char *rev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "revision"));
	const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "phase"));
	const cJSON *m;

	memset(r, 0, sizeof(*r));
	if (!rev || !phase || phase_parse(phase) < 0)
		return -EINVAL;
	copy_str(r->name, sizeof(r->name), o, "name");
	r->revision = strtoull(rev, NULL, 16);
	r->attempt = (int)json_num(o, "attempt");
	r->st.phase = (enum rollout_phase)phase_parse(phase);
	r->st.weight_bp = (uint16_t)json_num(o, "weight_bp");
	r->st.failed_checks = (int)json_num(o, "failed_checks");
	r->st.iterations = (int)json_num(o, "iterations");
	r->st.paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "paused"));
	r->st.manual = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "manual_weight"));
	r->threshold = (int)json_num(o, "threshold");
	r->max_weight_bp = (uint16_t)json_num(o, "max_weight_bp");
	r->interval_ms = (uint64_t)json_num(o, "interval_ms");
	copy_str(r->primary_version, sizeof(r->primary_version), o, "primary_version");
	copy_str(r->canary_version, sizeof(r->canary_version), o, "canary_version");
	r->started_unix_ms = (uint64_t)json_num(o, "started_unix_ms");
	r->updated_unix_ms = (uint64_t)json_num(o, "updated_unix_ms");
	r->decided_unix_ms = (uint64_t)json_num(o, "decided_unix_ms");
	copy_str(r->last_action, sizeof(r->last_action), o, "last_action");
	copy_str(r->last_reason, sizeof(r->last_reason), o, "last_reason");
	m = cJSON_GetObjectItemCaseSensitive(o, "last_window");
	if (m) {
		r->has_last = true;
		window_from_json(cJSON_GetObjectItemCaseSensitive(m, "canary"), &r->last_canary);
		window_from_json(cJSON_GetObjectItemCaseSensitive(m, "primary"), &r->last_primary);
	}
	if (r->st.weight_bp > SL_WEIGHT_MAX)
		return -EINVAL;
	return 0;
}

int state_save(const char *dir, const struct rollout_record *r)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	cJSON *o;
	char *s;
	FILE *f;
	int err = mkdirs(dir);

	if (err)
		return err;
	record_path(dir, r->name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	o = record_json(r);
	s = cJSON_Print(o);
	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
		goto out;
	}
	fputs(s, f);
	fputc('\n', f);
	if (fclose(f) || rename(tmp, path))
		err = -errno;
out:
	if (err)
		log_warn("saving rollout state %s: %s\n", path, strerror(-err));
	free(s);
	return err;
}

static int load_path(const char *path, struct rollout_record *r)
{
	FILE *f = fopen(path, "r");
	char buf[16384];
	size_t n;
	cJSON *o;
	int err;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	o = cJSON_Parse(buf);
	if (!o)
		return -EINVAL;
	err = record_from_json(o, r);
	cJSON_Delete(o);
	return err;
}

int state_load(const char *dir, const char *name, struct rollout_record *r)
{
	char path[PATH_MAX];

	record_path(dir, name, path, sizeof(path));
	return load_path(path, r);
}

static int by_record_name(const void *a, const void *b)
{
	return strcmp(((const struct rollout_record *)a)->name,
		      ((const struct rollout_record *)b)->name);
}

int state_list(const char *dir, struct rollout_record **out, int *n)
{
	char sub[PATH_MAX];
	struct dirent *de;
	int cap = 0;
	DIR *d;

	*out = NULL;
	*n = 0;
	snprintf(sub, sizeof(sub), "%s/rollouts", dir);
	d = opendir(sub);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char path[PATH_MAX + 256];

		if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		if (*n == cap) {
			struct rollout_record *grown;

			cap = cap ? cap * 2 : 16;
			grown = realloc(*out, cap * sizeof(**out));
			if (!grown) {
				closedir(d);
				return -ENOMEM;
			}
			*out = grown;
		}
		snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
		if (load_path(path, &(*out)[*n]) == 0)
			(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), by_record_name);
	return 0;
}

void state_remove(const char *dir, const char *name)
{
	char path[PATH_MAX];

	record_path(dir, name, path, sizeof(path));
	unlink(path);
}

int history_append(const char *dir, const cJSON *rec)
{
	char path[PATH_MAX];
	char *s = cJSON_PrintUnformatted(rec);
	size_t len;
	int fd, err = 0;

	if (!s)
		return -ENOMEM;
	err = mkdirs(dir);
	if (err)
		goto out;
	snprintf(path, sizeof(path), "%s/history.jsonl", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	len = strlen(s);
	s[len] = '\n'; /* cJSON's buffer has room: the terminating NUL becomes the newline */
	if (write(fd, s, len + 1) != (ssize_t)(len + 1))
		err = -EIO;
	close(fd);
out:
	if (err)
		log_warn("appending to %s/history.jsonl: %s\n", dir, strerror(-err));
	free(s);
	return err;
}
