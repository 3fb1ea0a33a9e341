-- Migrating from the seed's delta triggers (OpenAudio PR 898) to walcount.
--
-- The triggers and walcount must never both maintain the counts: every
-- repost would be counted twice. Order:
--   1. this file           (psql -d audius -f sql/drop_seed_triggers.sql)
--   2. walcount init       (creates the slot and recomputes every count it
--                           maintains from a snapshot: writes made between 1
--                           and 2 are counted there, nothing is lost)
--   3. walcount run
-- Dropping first leaves no window in which both count.
--
-- Only the count triggers go; the triggers' milestone and notification
-- inserts, if still wanted, need a trigger of their own.
DROP TRIGGER IF EXISTS on_repost ON reposts;
DROP TRIGGER IF EXISTS on_save ON saves;
DROP TRIGGER IF EXISTS on_follow ON follows;
DROP FUNCTION IF EXISTS handle_repost() CASCADE;
DROP FUNCTION IF EXISTS handle_save() CASCADE;
DROP FUNCTION IF EXISTS handle_follow() CASCADE;
