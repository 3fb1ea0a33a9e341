-- The least-privilege role walcount runs as. Run once as a superuser in the
-- Audius database (psql -d audius -f sql/roles.sql), then set its password:
--   ALTER ROLE walcount PASSWORD '...';
-- It can stream (REPLICATION), read what the counting rules and the
-- reconcile sweep read, and write only the count columns it maintains, in
-- rows it may create; nothing else. Idempotent.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'walcount') THEN
		CREATE ROLE walcount LOGIN REPLICATION;
	ELSE
		ALTER ROLE walcount LOGIN REPLICATION;
	END IF;
END $$;

-- Its own state (walcount.progress, walcount.checkpoints); walcount creates
-- the tables at its first start.
CREATE SCHEMA IF NOT EXISTS walcount AUTHORIZATION walcount;

GRANT USAGE ON SCHEMA public TO walcount;

-- What the stream, the initial load and the sweep read.
GRANT SELECT ON reposts, saves, follows, tracks, playlists, comments TO walcount;
GRANT SELECT ON aggregate_user, aggregate_track, aggregate_playlist TO walcount;

-- The count columns, and the key to create a missing row with; never
-- score, supporter or share columns.
GRANT INSERT (user_id, repost_count, track_save_count, follower_count, following_count, track_count,
	playlist_count, album_count, dominant_genre, dominant_genre_count) ON aggregate_user TO walcount;
GRANT UPDATE (repost_count, track_save_count, follower_count, following_count, track_count,
	playlist_count, album_count, dominant_genre, dominant_genre_count) ON aggregate_user TO walcount;
GRANT INSERT (track_id, repost_count, save_count, comment_count) ON aggregate_track TO walcount;
GRANT UPDATE (repost_count, save_count, comment_count) ON aggregate_track TO walcount;
-- is_album is copied from playlists when walcount creates the row, as the
-- seed's triggers do, and never updated.
GRANT INSERT (playlist_id, repost_count, save_count, is_album) ON aggregate_playlist TO walcount;
GRANT UPDATE (repost_count, save_count) ON aggregate_playlist TO walcount;
