/* decode: every record of a real wal2json v2 capture, then hand-made edge
 * records. Run from the repository root (reads tests/data/). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SAMPLE_PATH "tests/data/wal2json-v2-sample.jsonl"
#define SAMPLE_MAX 64
#define ERRLEN 256

/* ---- the captured sample ---- */

/* Line numbers (0-based) of the records the tests look at. */
enum {
	L_BEGIN_752 = 0,
	L_INSERT_TRACK = 1,
	L_UPDATE_SAME = 3,
	L_COMMIT_752 = 4,
	L_UPDATE_MOVE = 6,
	L_DELETE = 9,
	L_FOLLOW_INSERT = 12,
	L_FOLLOW_UPDATE = 15, /* identity is the primary key only */
	L_TRUNCATE = 18,
	L_MESSAGE = 21,
	SAMPLE_LINES = 23,
};

struct sample {
	size_t n;
	bool ok[SAMPLE_MAX];
	struct change ch[SAMPLE_MAX];
	char err[SAMPLE_MAX][ERRLEN];
};

static struct sample sample;

/* Decodes every line of the sample file into sample. */
static int load_sample(void **state)
{
	FILE *f = fopen(SAMPLE_PATH, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	(void) state;
	if (f == NULL)
		return -1;
	while ((len = getline(&line, &cap, f)) > 0 && sample.n < SAMPLE_MAX) {
		if (line[len - 1] == '\n')
			len--;
		sample.ok[sample.n] = decode_record(line, (size_t) len, &sample.ch[sample.n], sample.err[sample.n], ERRLEN);
		sample.n++;
	}
	free(line);
	fclose(f);
	return 0;
}

static const struct change *sample_ok(const struct sample *s, size_t line)
{
	if (!s->ok[line])
		fail_msg("line %zu: %s", line + 1, s->err[line]);
	return &s->ch[line];
}

static void assert_image(const struct image *img, int64_t user, int64_t item, enum item_type type, enum tri cur, enum tri del)
{
	assert_true(img->present);
	assert_false(img->key_null);
	assert_int_equal(img->user, user);
	assert_int_equal(img->item, item);
	assert_int_equal(img->type, type);
	assert_int_equal(img->is_current, cur);
	assert_int_equal(img->is_delete, del);
}

/* Every line decodes, also the follows UPDATE whose identity lacks
 * is_current/is_delete (follows is at REPLICA IDENTITY DEFAULT in the
 * capture): see test_sample_follows. */
static void test_sample_every_line(void **state)
{
	const struct sample *s = *state;

	assert_int_equal(s->n, SAMPLE_LINES);
	for (size_t i = 0; i < s->n; i++)
		if (!s->ok[i])
			fail_msg("line %zu: %s", i + 1, s->err[i]);
}

static void test_sample_begin_commit(void **state)
{
	const struct change *b = sample_ok(*state, L_BEGIN_752);
	const struct change *c = sample_ok(*state, L_COMMIT_752);

	assert_int_equal(b->action, ACT_BEGIN);
	assert_int_equal(b->xid, 752);
	assert_int_equal(b->lsn, 0x1594DC0);
	assert_int_equal(b->end_lsn, 0x1594DF0);
	assert_int_equal(b->table, SRC_NONE);
	assert_false(b->old.present);
	assert_false(b->new.present);
	assert_int_equal(c->action, ACT_COMMIT);
	assert_int_equal(c->xid, 752);
	assert_int_equal(c->lsn, 0x1594DC0);
	assert_int_equal(c->end_lsn, 0x1594DF0);
	/* "2026-11-24 22:27:16.654103+00" */
	assert_int_equal(b->commit_time_us, INT64_C(1795559236654103));
	assert_int_equal(c->commit_time_us, b->commit_time_us);
}

static void test_sample_insert_track(void **state)
{
	const struct change *c = sample_ok(*state, L_INSERT_TRACK);

	assert_int_equal(c->action, ACT_INSERT);
	assert_int_equal(c->xid, 752);
	assert_int_equal(c->lsn, 0x1594B80);
	assert_int_equal(c->end_lsn, 0);
	assert_int_equal(c->table, SRC_REPOSTS);
	assert_false(c->old.present);
	assert_image(&c->new, 3, 11, ITEM_TRACK, TRI_TRUE, TRI_FALSE);
}

static void test_sample_update_with_identity(void **state)
{
	const struct change *same = sample_ok(*state, L_UPDATE_SAME);
	const struct change *move = sample_ok(*state, L_UPDATE_MOVE);

	assert_int_equal(same->action, ACT_UPDATE);
	assert_image(&same->old, 3, 11, ITEM_TRACK, TRI_TRUE, TRI_FALSE);
	assert_image(&same->new, 3, 11, ITEM_TRACK, TRI_TRUE, TRI_FALSE);
	assert_int_equal(move->action, ACT_UPDATE);
	assert_int_equal(move->xid, 753);
	assert_int_equal(move->lsn, 0x1594DF0);
	assert_image(&move->old, 4, 12, ITEM_PLAYLIST, TRI_TRUE, TRI_FALSE);
	assert_image(&move->new, 4, 13, ITEM_PLAYLIST, TRI_TRUE, TRI_FALSE);
}

static void test_sample_delete(void **state)
{
	const struct change *c = sample_ok(*state, L_DELETE);

	assert_int_equal(c->action, ACT_DELETE);
	assert_int_equal(c->xid, 754);
	assert_int_equal(c->lsn, 0x1594EF8);
	assert_int_equal(c->table, SRC_REPOSTS);
	assert_image(&c->old, 3, 11, ITEM_TRACK, TRI_TRUE, TRI_FALSE);
	assert_false(c->new.present);
}

static void test_sample_follows(void **state)
{
	const struct sample *s = *state;
	const struct change *c = sample_ok(s, L_FOLLOW_INSERT);

	assert_int_equal(c->action, ACT_INSERT);
	assert_int_equal(c->table, SRC_FOLLOWS);
	assert_int_equal(c->lsn, 0x1594F88);
	assert_image(&c->new, 7, 8, ITEM_NONE, TRI_TRUE, TRI_FALSE);
	/* REPLICA IDENTITY DEFAULT: the old image is the primary key only. */
	c = sample_ok(s, L_FOLLOW_UPDATE);
	assert_int_equal(c->action, ACT_UPDATE);
	assert_int_equal(c->lsn, 0x15950A8);
	assert_true(c->old.present);
	assert_true(c->old.incomplete);
	assert_false(c->new.incomplete);
}

static void test_sample_truncate(void **state)
{
	const struct change *c = sample_ok(*state, L_TRUNCATE);

	assert_int_equal(c->action, ACT_TRUNCATE);
	assert_int_equal(c->xid, 757);
	assert_int_equal(c->lsn, 0x1595C68);
	assert_int_equal(c->table, SRC_FOLLOWS);
	assert_false(c->old.present);
	assert_false(c->new.present);
}

static void test_sample_message(void **state)
{
	const struct change *c = sample_ok(*state, L_MESSAGE);

	assert_int_equal(c->action, ACT_MESSAGE);
	assert_int_equal(c->xid, 758);
	assert_int_equal(c->lsn, 0x1595E50);
	assert_int_equal(c->table, SRC_NONE);
}

/* ---- hand-made records ---- */

/* clang-format off */
#define COL(name, value) "{\"name\":\"" name "\",\"type\":\"t\",\"value\":" value "}"
#define REPOST(user, item, type, cur, del)                                                    \
	"[" COL("blockhash", "null") "," COL("user_id", user) "," COL("repost_item_id", item) \
	"," COL("repost_type", type) "," COL("is_current", cur) "," COL("is_delete", del) ","  \
	COL("txhash", "\"\"") "]"
#define ACTIVE_REPOST REPOST("3", "11", "\"track\"", "true", "false")
#define ROW(action, schema, table) \
	"{\"action\":\"" action "\",\"xid\":9,\"lsn\":\"0/A0\",\"schema\":\"" schema "\",\"table\":\"" table "\""
#define INSERT_REPOST(columns) ROW("I", "public", "reposts") ",\"columns\":" columns "}"

static bool decode_str(const char *json, struct change *c, char err[ERRLEN])
{
	return decode_record(json, strlen(json), c, err, ERRLEN);
}

static struct change decode_ok(const char *json)
{
	struct change c;
	char err[ERRLEN];

	if (!decode_str(json, &c, err))
		fail_msg("%s", err);
	return c;
}

struct error_case {
	const char *name;
	const char *json;
	const char *expect[2]; /* substrings the message must contain */
};

/* Not const: cmocka's test state is a plain pointer. */
static struct error_case error_cases[] = {
	{"malformed JSON", "{\"action\":\"B\",", {"wal2json record does not parse: ", "(line 1 col"}},
	{"not an object", "[1,2]", {"wal2json record: not a JSON object", NULL}},
	{"duplicate key", "{\"action\":\"B\",\"action\":\"C\"}", {"does not parse", "duplicate"}},
	{"missing action", "{\"xid\":9,\"lsn\":\"0/A0\"}", {"record at 0/A0: missing \"action\"", NULL}},
	{"unknown action", "{\"action\":\"X\",\"xid\":9,\"lsn\":\"0/A0\"}",
	 {"record at 0/A0: unknown action \"X\"", NULL}},
	{"two-letter action", "{\"action\":\"BC\",\"xid\":9,\"lsn\":\"0/A0\"}",
	 {"0/A0", "unknown action \"BC\""}},
	{"empty action", "{\"action\":\"\",\"xid\":9,\"lsn\":\"0/A0\"}", {"0/A0", "unknown action \"\""}},
	{"action not a string", "{\"action\":73,\"lsn\":\"0/A0\"}", {"0/A0", "\"action\" is not a string"}},
	{"missing lsn", "{\"action\":\"I\",\"xid\":9,\"schema\":\"public\",\"table\":\"reposts\",\"columns\":"
	 ACTIVE_REPOST "}", {"wal2json record: missing \"lsn\"", NULL}},
	{"bad lsn", "{\"action\":\"B\",\"xid\":9,\"lsn\":\"0/zz\",\"nextlsn\":\"0/B0\"}",
	 {"\"lsn\" is not an LSN: \"0/zz\"", NULL}},
	{"lsn with trailing garbage", "{\"action\":\"B\",\"xid\":9,\"lsn\":\"0/A0x\",\"nextlsn\":\"0/B0\"}",
	 {"\"lsn\" is not an LSN", NULL}},
	{"lsn not a string", "{\"action\":\"B\",\"xid\":9,\"lsn\":160,\"nextlsn\":\"0/B0\"}",
	 {"\"lsn\" is not a string", NULL}},
	{"missing nextlsn", "{\"action\":\"C\",\"xid\":9,\"lsn\":\"0/A0\"}",
	 {"record at 0/A0: missing \"nextlsn\"", NULL}},
	{"bad nextlsn", "{\"action\":\"C\",\"xid\":9,\"lsn\":\"0/A0\",\"nextlsn\":\"B0\"}",
	 {"0/A0", "\"nextlsn\" is not an LSN: \"B0\""}},
	{"missing xid", "{\"action\":\"B\",\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\"}",
	 {"record at 0/A0: missing \"xid\"", NULL}},
	{"xid not an integer", "{\"action\":\"B\",\"xid\":\"9\",\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\"}",
	 {"0/A0", "\"xid\" is not an integer"}},
	{"null xid on a change", "{\"action\":\"I\",\"xid\":null,\"lsn\":\"0/A0\",\"schema\":\"public\",\"table\":\"saves\"}",
	 {"0/A0", "\"xid\" is not an integer"}},
	{"negative xid", "{\"action\":\"B\",\"xid\":-1,\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\"}",
	 {"0/A0", "\"xid\" is negative"}},
	{"wrong table", ROW("I", "public", "tracks") ",\"columns\":[]}",
	 {"record at 0/A0: table public.tracks is not", NULL}},
	{"wrong schema", ROW("U", "audit", "reposts") ",\"columns\":" ACTIVE_REPOST "}",
	 {"0/A0", "table audit.reposts is not"}},
	{"missing schema", "{\"action\":\"T\",\"xid\":9,\"lsn\":\"0/A0\",\"table\":\"reposts\"}",
	 {"0/A0", "missing \"schema\""}},
	{"missing table", "{\"action\":\"T\",\"xid\":9,\"lsn\":\"0/A0\",\"schema\":\"public\"}",
	 {"0/A0", "missing \"table\""}},
	{"newline in table name", ROW("I", "public", "re\\nposts") ",\"columns\":[]}",
	 {"0/A0", "public.re posts"}},
	{"is_delete wrong type", INSERT_REPOST(REPOST("3", "11", "\"track\"", "true", "\"false\"")),
	 {"record at 0/A0: reposts \"columns\" image: is_delete is not a boolean", NULL}},
	{"is_current as integer", INSERT_REPOST(REPOST("3", "11", "\"track\"", "1", "false")),
	 {"0/A0", "is_current is not a boolean"}},
	{"user_id as string", INSERT_REPOST(REPOST("\"3\"", "11", "\"track\"", "true", "false")),
	 {"0/A0", "user_id is not an integer"}},
	{"repost_item_id as real", INSERT_REPOST(REPOST("3", "11.0", "\"track\"", "true", "false")),
	 {"0/A0", "repost_item_id is not an integer"}},
	{"repost_type not a string", INSERT_REPOST(REPOST("3", "11", "1", "true", "false")),
	 {"0/A0", "repost_type is not a string"}},
	{"saves image lacks save_item_id", ROW("I", "public", "saves") ",\"columns\":" ACTIVE_REPOST "}",
	 {"0/A0", "saves \"columns\" image lacks column save_item_id"}},
	{"insert without columns", ROW("I", "public", "reposts") "}", {"0/A0", "missing \"columns\""}},
	{"update without columns", ROW("U", "public", "reposts") ",\"identity\":" ACTIVE_REPOST "}",
	 {"0/A0", "missing \"columns\""}},
	{"delete without identity", ROW("D", "public", "reposts") ",\"columns\":" ACTIVE_REPOST "}",
	 {"0/A0", "missing \"identity\""}},
	{"columns not an array", INSERT_REPOST("{}"), {"0/A0", "\"columns\" is not an array"}},
	{"identity not an array", ROW("U", "public", "reposts") ",\"columns\":" ACTIVE_REPOST
	 ",\"identity\":null}", {"0/A0", "\"identity\" is not an array"}},
	{"column not an object", INSERT_REPOST("[7]"),
	 {"0/A0", "reposts \"columns\" image: element 0 has no string \"name\""}},
	{"column without value", INSERT_REPOST("[{\"name\":\"user_id\"}]"),
	 {"0/A0", "column user_id has no \"value\""}},
};
/* clang-format on */

static void test_error_case(void **state)
{
	const struct error_case *e = *state;
	struct change c;
	char err[ERRLEN];

	assert_false(decode_str(e->json, &c, err));
	for (size_t i = 0; i < ARRAY_LEN(e->expect) && e->expect[i] != NULL; i++)
		if (strstr(err, e->expect[i]) == NULL)
			fail_msg("message \"%s\" lacks \"%s\"", err, e->expect[i]);
	for (const char *p = err; *p != '\0'; p++)
		assert_true((unsigned char) *p >= 0x20);
}

static void test_timestamp_styles(void **state)
{
	(void) state;
	assert_int_equal(decode_ok("{\"action\":\"C\",\"xid\":9,\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\","
				   "\"timestamp\":\"2026-11-24 23:27:16.5+01\"}")
				 .commit_time_us,
			 INT64_C(1795559236500000));
	assert_int_equal(decode_ok("{\"action\":\"C\",\"xid\":9,\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\","
				   "\"timestamp\":\"2026-11-24 17:57:16-04:30\"}")
				 .commit_time_us,
			 INT64_C(1795559236000000));
	/* Another DateStyle reads as unknown, never as an error. */
	assert_int_equal(decode_ok("{\"action\":\"C\",\"xid\":9,\"lsn\":\"0/A0\",\"nextlsn\":\"0/B0\","
				   "\"timestamp\":\"Tue Nov 24 22:27:16 2026 UTC\"}")
				 .commit_time_us,
			 0);
}

static void test_null_is_delete(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("3", "11", "\"track\"", "true", "null")));

	(void) state;
	assert_int_equal(c.new.is_delete, TRI_NULL);
	assert_int_equal(c.new.is_current, TRI_TRUE);
}

static void test_null_is_current(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("3", "11", "\"track\"", "null", "true")));

	(void) state;
	assert_int_equal(c.new.is_current, TRI_NULL);
	assert_int_equal(c.new.is_delete, TRI_TRUE);
}

static void test_null_repost_type(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("3", "11", "null", "true", "false")));

	(void) state;
	assert_int_equal(c.new.type, ITEM_UNKNOWN);
}

static void test_unknown_repost_type(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("3", "11", "\"remix\"", "true", "false")));

	(void) state;
	assert_int_equal(c.new.type, ITEM_UNKNOWN);
}

static void test_album_type(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("3", "11", "\"album\"", "true", "false")));

	(void) state;
	assert_int_equal(c.new.type, ITEM_ALBUM);
}

static void test_null_user_id(void **state)
{
	struct change c = decode_ok(INSERT_REPOST(REPOST("null", "11", "\"track\"", "true", "false")));

	(void) state;
	assert_true(c.new.key_null);
	assert_int_equal(c.new.item, 11);
}

/* No "identity": an identity index the UPDATE did not touch, so the old
 * values equal the new ones. */
static void test_update_without_identity(void **state)
{
	struct change c = decode_ok(
		ROW("U", "public", "reposts") ",\"columns\":" REPOST("3", "11", "\"playlist\"", "true", "true") "}");

	(void) state;
	assert_int_equal(c.action, ACT_UPDATE);
	assert_image(&c.new, 3, 11, ITEM_PLAYLIST, TRI_TRUE, TRI_TRUE);
	assert_image(&c.old, 3, 11, ITEM_PLAYLIST, TRI_TRUE, TRI_TRUE);
}

/* An identity without a column the rules read (REPLICA IDENTITY DEFAULT
 * or an index without it) is no error: the old image is incomplete. */
static void test_identity_incomplete(void **state)
{
	struct change c = decode_ok(ROW("D", "public", "reposts") ",\"identity\":[" COL("user_id", "3") "," COL(
		"repost_item_id", "11") "," COL("repost_type", "\"track\"") "," COL("is_current", "true") "]}");

	(void) state;
	assert_int_equal(c.action, ACT_DELETE);
	assert_true(c.old.present);
	assert_true(c.old.incomplete);
	assert_false(c.new.present);
}

static void test_saves_record(void **state)
{
	struct change c = decode_ok(ROW("D", "public", "saves") ",\"identity\":[" COL("save_type", "\"album\"") "," COL(
		"is_delete", "false") "," COL("user_id", "5") "," COL("is_current", "false") "," COL("save_item_id", "42") "]}");

	(void) state;
	assert_int_equal(c.table, SRC_SAVES);
	assert_image(&c.old, 5, 42, ITEM_ALBUM, TRI_FALSE, TRI_FALSE);
	assert_false(c.new.present);
}

/* A non-transactional message may lack xid; M requires nothing. */
static void test_message_without_xid(void **state)
{
	struct change c = decode_ok("{\"action\":\"M\",\"transactional\":false,\"prefix\":\"p\",\"content\":\"x\"}");

	(void) state;
	assert_int_equal(c.action, ACT_MESSAGE);
	assert_int_equal(c.xid, 0);
	assert_int_equal(c.lsn, 0);
}

/* wal2json writes "xid":null for a message emitted outside a transaction
 * (pg_logical_emit_message(false, ...)). */
static void test_message_null_xid(void **state)
{
	struct change c = decode_ok("{\"action\":\"M\",\"xid\":null,\"lsn\":\"0/19E81E0\",\"transactional\":false,"
				    "\"prefix\":\"walcount\",\"content\":\"x\"}");

	(void) state;
	assert_int_equal(c.action, ACT_MESSAGE);
	assert_int_equal(c.xid, 0);
}

/* The record is len bytes, not a C string: bytes after it are not read. */
static void test_length_not_nul(void **state)
{
	const char buf[] = "{\"action\":\"M\",\"lsn\":\"0/A0\"}{garbage";
	struct change c;
	char err[ERRLEN];

	(void) state;
	assert_true(decode_record(buf, strlen(buf) - strlen("{garbage"), &c, err, sizeof(err)));
	assert_int_equal(c.lsn, 0xA0);
	assert_false(decode_record(buf, strlen(buf) - strlen("}{garbage"), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "does not parse"));
}

/* A short error buffer truncates; a failure leaves *out untouched. */
static void test_short_err_and_untouched_out(void **state)
{
	struct change c = {.xid = 77};
	char err[12];

	(void) state;
	assert_false(decode_record("{\"action\":\"X\",\"lsn\":\"0/A0\"}", 27, &c, err, sizeof(err)));
	assert_string_equal(err, "wal2json re");
	assert_int_equal(c.xid, 77);
	assert_false(decode_record("nope", 4, &c, NULL, 0));
}

static void test_names(void **state)
{
	(void) state;
	assert_string_equal(change_action_name(ACT_BEGIN), "begin");
	assert_string_equal(change_action_name(ACT_UPDATE), "update");
	assert_string_equal(change_action_name(ACT_MESSAGE), "message");
	assert_string_equal(src_table_name(SRC_NONE), "none");
	assert_string_equal(src_table_name(SRC_REPOSTS), "reposts");
	assert_string_equal(src_table_name(SRC_SAVES), "saves");
	assert_string_equal(src_table_name(SRC_FOLLOWS), "follows");
}

int main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test_prestate(test_sample_every_line, &sample),
		cmocka_unit_test_prestate(test_sample_begin_commit, &sample),
		cmocka_unit_test(test_timestamp_styles),
		cmocka_unit_test_prestate(test_sample_insert_track, &sample),
		cmocka_unit_test_prestate(test_sample_update_with_identity, &sample),
		cmocka_unit_test_prestate(test_sample_delete, &sample),
		cmocka_unit_test_prestate(test_sample_follows, &sample),
		cmocka_unit_test_prestate(test_sample_truncate, &sample),
		cmocka_unit_test_prestate(test_sample_message, &sample),
		cmocka_unit_test(test_null_is_delete),
		cmocka_unit_test(test_null_is_current),
		cmocka_unit_test(test_null_repost_type),
		cmocka_unit_test(test_unknown_repost_type),
		cmocka_unit_test(test_album_type),
		cmocka_unit_test(test_null_user_id),
		cmocka_unit_test(test_update_without_identity),
		cmocka_unit_test(test_identity_incomplete),
		cmocka_unit_test(test_saves_record),
		cmocka_unit_test(test_message_without_xid),
		cmocka_unit_test(test_message_null_xid),
		cmocka_unit_test(test_length_not_nul),
		cmocka_unit_test(test_short_err_and_untouched_out),
		cmocka_unit_test(test_names),
	};
	struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(error_cases)];

	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < ARRAY_LEN(error_cases); i++)
		tests[ARRAY_LEN(fixed) + i] = (struct CMUnitTest){
			.name = error_cases[i].name,
			.test_func = test_error_case,
			.initial_state = &error_cases[i],
		};
	return cmocka_run_group_tests(tests, load_sample, NULL);
}
