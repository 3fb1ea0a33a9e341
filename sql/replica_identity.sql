-- For each source table: whether the old row image in the WAL carries every
-- column the counting rules read. FULL always does; USING INDEX does when the
-- index covers the key columns, is_current and is_delete. identity_name is
-- how ALTER TABLE spells the identity, for messages.
SELECT t.name,
	c.oid IS NOT NULL AS present,
	coalesce(c.relreplident::text, '') AS identity,
	CASE c.relreplident
		WHEN 'f' THEN true
		WHEN 'i' THEN t.cols <@ (
			SELECT array_agg(a.attname::text)
			FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = c.oid AND i.indisreplident)
		ELSE false
	END AS covers,
	CASE c.relreplident
		WHEN 'd' THEN 'DEFAULT'
		WHEN 'n' THEN 'NOTHING'
		WHEN 'f' THEN 'FULL'
		WHEN 'i' THEN 'USING INDEX ' || coalesce((
			SELECT quote_ident(ic.relname)
			FROM pg_index i
			JOIN pg_class ic ON ic.oid = i.indexrelid
			WHERE i.indrelid = c.oid AND i.indisreplident), '(dropped)')
		ELSE ''
	END AS identity_name
FROM (VALUES
	(1, 'reposts', ARRAY['user_id', 'repost_item_id', 'repost_type', 'is_current', 'is_delete']),
	(2, 'saves', ARRAY['user_id', 'save_item_id', 'save_type', 'is_current', 'is_delete']),
	(3, 'follows', ARRAY['follower_user_id', 'followee_user_id', 'is_current', 'is_delete'])
) AS t(ord, name, cols)
LEFT JOIN pg_class c ON c.oid = to_regclass('public.' || t.name)
ORDER BY t.ord
