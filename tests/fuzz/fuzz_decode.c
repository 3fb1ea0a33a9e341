/* libFuzzer target: one wal2json format-version 2 record through
 * decode_record and, when it decodes, delta_derive, the way the consumer
 * feeds them (stream.c hands decode a buffer that is not NUL-terminated).
 *
 * Besides ASan/UBSan findings it aborts when a documented contract breaks:
 *   - a failure leaves one non-empty line starting "wal2json record" in err,
 *     NUL-terminated, and never writes past errlen (a tiny second buffer,
 *     allocated to its exact size, checks the truncation path);
 *   - a success yields an action and a table in range, the images the
 *     action implies, and an LSN that formats and parses back;
 *   - delta_derive returns 0..DELTA_MAX entries, no zero amount, no
 *     entries with a skip reason, and names for everything it returns. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "delta.h"
#include "lsn.h"

#define ERRLEN 512 /* consumer.c's sink_record buffer */

#define CHECK(cond)                                                                                               \
	do {                                                                                                      \
		if (!(cond)) {                                                                                    \
			fprintf(stderr, "fuzz_decode: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
			abort();                                                                                  \
		}                                                                                                 \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);

	CHECK(n < errlen);
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char) err[i] >= 0x20);
	CHECK(strncmp(err, "wal2json record", n < 15 ? n : 15) == 0);
}

static void check_image(const struct image *img, enum src_table t)
{
	CHECK(img->present);
	CHECK(img->is_current >= TRI_NULL && img->is_current <= TRI_TRUE);
	CHECK(img->is_delete >= TRI_NULL && img->is_delete <= TRI_TRUE);
	if (t == SRC_FOLLOWS)
		CHECK(img->type == ITEM_NONE);
	else
		CHECK(img->type >= ITEM_TRACK && img->type <= ITEM_UNKNOWN);
}

static void check_change(const struct change *ch)
{
	char buf[LSN_BUFLEN];
	lsn_t back;

	CHECK(ch->action >= ACT_BEGIN && ch->action <= ACT_MESSAGE);
	CHECK(strcmp(change_action_name(ch->action), "unknown") != 0);
	CHECK(lsn_parse(lsn_format(ch->lsn, buf), &back) && back == ch->lsn);
	switch (ch->action) {
	case ACT_BEGIN:
	case ACT_COMMIT:
	case ACT_MESSAGE:
		CHECK(ch->table == SRC_NONE);
		CHECK(!ch->old.present && !ch->new.present);
		break;
	case ACT_INSERT:
		CHECK(ch->table != SRC_NONE && ch->new.present && !ch->old.present);
		check_image(&ch->new, ch->table);
		break;
	case ACT_UPDATE:
		CHECK(ch->table != SRC_NONE && ch->new.present && ch->old.present);
		check_image(&ch->new, ch->table);
		check_image(&ch->old, ch->table);
		break;
	case ACT_DELETE:
		CHECK(ch->table != SRC_NONE && ch->old.present && !ch->new.present);
		check_image(&ch->old, ch->table);
		break;
	case ACT_TRUNCATE:
		CHECK(ch->table != SRC_NONE);
		break;
	}
	CHECK(strcmp(src_table_name(ch->table), "unknown") != 0);
}

static void check_delta(const struct change *ch)
{
	struct delta d[DELTA_MAX];
	enum skip_reason why;
	size_t n = delta_derive(ch, d, &why);

	CHECK(n <= DELTA_MAX);
	CHECK(why >= SKIP_NONE && why < SKIP__COUNT);
	CHECK(why == SKIP_NONE || n == 0);
	CHECK(strcmp(skip_reason_name(why), "unknown") != 0);
	for (size_t i = 0; i < n; i++) {
		CHECK(d[i].column >= COL_USER_REPOST && d[i].column < COL__COUNT);
		CHECK(d[i].amount != 0 && d[i].amount >= -2 && d[i].amount <= 2);
		CHECK(agg_column_index(d[i].column) >= 0 && agg_column_index(d[i].column) < AGG_MAX_COLUMNS);
		CHECK(strcmp(agg_table_name(agg_column_table(d[i].column)), "unknown") != 0);
		for (size_t j = 0; j < i; j++)
			CHECK(d[j].column != d[i].column || d[j].key != d[i].key);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: the consumer's buffer has no NUL after it. */
	char *json = malloc(size ? size : 1);
	char err[ERRLEN];
	struct change ch;

	if (json == NULL)
		return 0;
	memcpy(json, data, size);
	memset(err, 'x', sizeof err);
	bool ok = decode_record(json, size, &ch, err, sizeof err);
	if (ok) {
		check_change(&ch);
		check_delta(&ch);
	} else {
		check_error(err, sizeof err);
	}
	/* The same record with a small buffer: must truncate, never overflow,
	 * and agree on the outcome. */
	size_t small = 1 + size % 24;
	char *tiny = malloc(small);
	struct change again;
	if (tiny != NULL) {
		CHECK(decode_record(json, size, &again, tiny, small) == ok);
		if (!ok)
			CHECK(strnlen(tiny, small) < small);
		free(tiny);
	}
	free(json);
	return 0;
}
