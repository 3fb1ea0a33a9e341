-- The seed's delta triggers (audius PR #898), written from its description
-- in shared/seed-pr-898.txt and shared/audius-schema-facts.md, for the
-- writer-throughput comparison of bench/suite.sh (scenario 2):
--   AFTER INSERT OR UPDATE ... FOR EACH ROW on reposts, saves, follows;
--   delta = (NEW.is_delete ? 0 : 1) - (TG_OP = 'UPDATE' AND NOT OLD.is_delete ? 1 : 0)
--   (is_current is ignored; there is no DELETE trigger);
--   each missing aggregate row is created first (INSERT ... ON CONFLICT DO
--   NOTHING), then every count(*) recount of the old triggers is now
--   `col = col + delta`: the UPDATE runs for every row written, also when
--   the delta is 0 (a re-delivery), as a recount did.
-- Not replicated, as the facts say: milestones, notifications, pg_notify.
-- bench/suite.sh drops them again with bench/seed_triggers_drop.sql.

CREATE OR REPLACE FUNCTION bench_handle_repost() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta int := (CASE WHEN NEW.is_delete THEN 0 ELSE 1 END)
		- (CASE WHEN TG_OP = 'UPDATE' AND NOT OLD.is_delete THEN 1 ELSE 0 END);
BEGIN
	INSERT INTO aggregate_user (user_id) VALUES (NEW.user_id) ON CONFLICT DO NOTHING;
	IF NEW.repost_type = 'track' THEN
		INSERT INTO aggregate_track (track_id) VALUES (NEW.repost_item_id) ON CONFLICT DO NOTHING;
	ELSE
		INSERT INTO aggregate_playlist (playlist_id, is_album)
		VALUES (NEW.repost_item_id, NEW.repost_type = 'album') ON CONFLICT DO NOTHING;
	END IF;
	UPDATE aggregate_user SET repost_count = repost_count + delta WHERE user_id = NEW.user_id;
	IF NEW.repost_type = 'track' THEN
		UPDATE aggregate_track SET repost_count = repost_count + delta WHERE track_id = NEW.repost_item_id;
	ELSE
		UPDATE aggregate_playlist SET repost_count = repost_count + delta WHERE playlist_id = NEW.repost_item_id;
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bench_handle_save() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta int := (CASE WHEN NEW.is_delete THEN 0 ELSE 1 END)
		- (CASE WHEN TG_OP = 'UPDATE' AND NOT OLD.is_delete THEN 1 ELSE 0 END);
BEGIN
	IF NEW.save_type = 'track' THEN
		INSERT INTO aggregate_user (user_id) VALUES (NEW.user_id) ON CONFLICT DO NOTHING;
		INSERT INTO aggregate_track (track_id) VALUES (NEW.save_item_id) ON CONFLICT DO NOTHING;
		UPDATE aggregate_track SET save_count = save_count + delta WHERE track_id = NEW.save_item_id;
		UPDATE aggregate_user SET track_save_count = track_save_count + delta WHERE user_id = NEW.user_id;
	ELSE
		INSERT INTO aggregate_playlist (playlist_id, is_album)
		VALUES (NEW.save_item_id, NEW.save_type = 'album') ON CONFLICT DO NOTHING;
		UPDATE aggregate_playlist SET save_count = save_count + delta WHERE playlist_id = NEW.save_item_id;
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bench_handle_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta int := (CASE WHEN NEW.is_delete THEN 0 ELSE 1 END)
		- (CASE WHEN TG_OP = 'UPDATE' AND NOT OLD.is_delete THEN 1 ELSE 0 END);
BEGIN
	INSERT INTO aggregate_user (user_id) VALUES (NEW.follower_user_id), (NEW.followee_user_id) ON CONFLICT DO NOTHING;
	UPDATE aggregate_user SET following_count = following_count + delta WHERE user_id = NEW.follower_user_id;
	UPDATE aggregate_user SET follower_count = follower_count + delta WHERE user_id = NEW.followee_user_id;
	RETURN NULL;
END $$;

CREATE TRIGGER bench_on_repost AFTER INSERT OR UPDATE ON reposts FOR EACH ROW EXECUTE FUNCTION bench_handle_repost();
CREATE TRIGGER bench_on_save AFTER INSERT OR UPDATE ON saves FOR EACH ROW EXECUTE FUNCTION bench_handle_save();
CREATE TRIGGER bench_on_follow AFTER INSERT OR UPDATE ON follows FOR EACH ROW EXECUTE FUNCTION bench_handle_follow();
