-- The Audius-shaped tables walcount reads and writes, as described in
-- shared/audius-schema-facts.md. `make run` and the tests load this file; a
-- real deployment already has these tables and needs only the
-- REPLICA IDENTITY lines at the end.

DO $$ BEGIN
	CREATE TYPE reposttype AS ENUM ('track', 'playlist', 'album');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
	CREATE TYPE savetype AS ENUM ('track', 'playlist', 'album');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS reposts (
	blockhash varchar,
	blocknumber integer,
	user_id integer NOT NULL,
	repost_item_id integer NOT NULL,
	repost_type reposttype NOT NULL,
	is_current boolean NOT NULL,
	is_delete boolean NOT NULL,
	created_at timestamp NOT NULL DEFAULT now(),
	txhash varchar NOT NULL DEFAULT '',
	slot integer,
	is_repost_of_repost boolean NOT NULL DEFAULT false,
	PRIMARY KEY (user_id, repost_item_id, repost_type, txhash)
);
CREATE UNIQUE INDEX IF NOT EXISTS reposts_current_idx
	ON reposts (user_id, repost_item_id, repost_type) WHERE is_current;

CREATE TABLE IF NOT EXISTS saves (
	blockhash varchar,
	blocknumber integer,
	user_id integer NOT NULL,
	save_item_id integer NOT NULL,
	save_type savetype NOT NULL,
	is_current boolean NOT NULL,
	is_delete boolean NOT NULL,
	created_at timestamp NOT NULL DEFAULT now(),
	txhash varchar NOT NULL DEFAULT '',
	slot integer,
	is_save_of_repost boolean NOT NULL DEFAULT false,
	PRIMARY KEY (user_id, save_item_id, save_type, txhash)
);
CREATE UNIQUE INDEX IF NOT EXISTS saves_current_idx
	ON saves (user_id, save_item_id, save_type) WHERE is_current;

CREATE TABLE IF NOT EXISTS follows (
	blockhash varchar,
	blocknumber integer,
	follower_user_id integer NOT NULL,
	followee_user_id integer NOT NULL,
	is_current boolean NOT NULL,
	is_delete boolean NOT NULL,
	created_at timestamp NOT NULL DEFAULT now(),
	txhash varchar NOT NULL DEFAULT '',
	slot integer,
	PRIMARY KEY (follower_user_id, followee_user_id, txhash)
);
CREATE UNIQUE INDEX IF NOT EXISTS follows_current_idx
	ON follows (follower_user_id, followee_user_id) WHERE is_current;

CREATE TABLE IF NOT EXISTS tracks (
	blockhash varchar,
	blocknumber integer,
	track_id integer NOT NULL,
	owner_id integer NOT NULL,
	is_current boolean NOT NULL,
	is_delete boolean NOT NULL,
	is_unlisted boolean NOT NULL DEFAULT false,
	is_available boolean NOT NULL DEFAULT true,
	stem_of jsonb,
	genre varchar,
	created_at timestamp NOT NULL DEFAULT now(),
	updated_at timestamp NOT NULL DEFAULT now(),
	txhash varchar NOT NULL DEFAULT '',
	PRIMARY KEY (track_id, txhash)
);

CREATE TABLE IF NOT EXISTS playlists (
	blockhash varchar,
	blocknumber integer,
	playlist_id integer NOT NULL,
	playlist_owner_id integer NOT NULL,
	is_album boolean NOT NULL DEFAULT false,
	is_private boolean NOT NULL DEFAULT false,
	is_current boolean NOT NULL,
	is_delete boolean NOT NULL,
	playlist_contents jsonb NOT NULL DEFAULT '{"track_ids": []}',
	created_at timestamp NOT NULL DEFAULT now(),
	updated_at timestamp NOT NULL DEFAULT now(),
	txhash varchar NOT NULL DEFAULT '',
	PRIMARY KEY (playlist_id, txhash)
);

CREATE TABLE IF NOT EXISTS comments (
	comment_id integer PRIMARY KEY,
	entity_id integer NOT NULL,
	entity_type varchar NOT NULL DEFAULT 'Track',
	is_delete boolean NOT NULL DEFAULT false,
	is_visible boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS aggregate_user (
	user_id integer PRIMARY KEY,
	track_count bigint DEFAULT 0,
	playlist_count bigint DEFAULT 0,
	album_count bigint DEFAULT 0,
	follower_count bigint DEFAULT 0,
	following_count bigint DEFAULT 0,
	repost_count bigint DEFAULT 0,
	track_save_count bigint DEFAULT 0,
	supporter_count integer NOT NULL DEFAULT 0,
	supporting_count integer NOT NULL DEFAULT 0,
	dominant_genre varchar,
	dominant_genre_count integer DEFAULT 0,
	score integer DEFAULT 0,
	total_track_count bigint DEFAULT 0,
	track_share_count bigint DEFAULT 0
);

CREATE TABLE IF NOT EXISTS aggregate_track (
	track_id integer PRIMARY KEY,
	repost_count integer NOT NULL DEFAULT 0,
	save_count integer NOT NULL DEFAULT 0,
	comment_count integer DEFAULT 0,
	share_count integer NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS aggregate_playlist (
	playlist_id integer PRIMARY KEY,
	is_album boolean,
	repost_count integer DEFAULT 0,
	save_count integer DEFAULT 0,
	share_count integer NOT NULL DEFAULT 0
);

-- walcount derives deltas from the old row image, so the old is_delete and
-- is_current must be in the WAL (audius-schema-facts.md, "Replica identity").
ALTER TABLE reposts REPLICA IDENTITY FULL;
ALTER TABLE saves REPLICA IDENTITY FULL;
ALTER TABLE follows REPLICA IDENTITY FULL;
