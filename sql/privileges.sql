-- The grants walcount needs that the current role lacks (see roles.sql),
-- one row each, so `run` can refuse with the GRANT that fixes it.
WITH needed (object, column_name, privilege) AS (VALUES
	('public.reposts', NULL, 'SELECT'), ('public.saves', NULL, 'SELECT'), ('public.follows', NULL, 'SELECT'),
	('public.tracks', NULL, 'SELECT'), ('public.playlists', NULL, 'SELECT'), ('public.comments', NULL, 'SELECT'),
	('public.aggregate_user', NULL, 'SELECT'), ('public.aggregate_track', NULL, 'SELECT'),
	('public.aggregate_playlist', NULL, 'SELECT'),
	('public.aggregate_user', 'repost_count', 'INSERT'), ('public.aggregate_user', 'repost_count', 'UPDATE'),
	('public.aggregate_user', 'track_count', 'UPDATE'), ('public.aggregate_user', 'dominant_genre', 'UPDATE'),
	('public.aggregate_track', 'repost_count', 'INSERT'), ('public.aggregate_track', 'comment_count', 'UPDATE'),
	('public.aggregate_playlist', 'repost_count', 'INSERT'), ('public.aggregate_playlist', 'save_count', 'UPDATE')
)
SELECT object, coalesce(column_name, ''), privilege
FROM needed
WHERE to_regclass(object) IS NOT NULL
	AND NOT CASE WHEN column_name IS NULL THEN has_table_privilege(object, privilege)
		ELSE has_column_privilege(object, column_name, privilege) END
