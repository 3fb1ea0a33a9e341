/* result: what a step of the consumer's loop tells the loop to do next.
 * Its own header because the stream's sink callbacks (stream.h) and the
 * cron tasks (cron.h) both answer with it, and cron has no business with
 * the replication protocol. */
#ifndef WALCOUNT_RESULT_H
#define WALCOUNT_RESULT_H

enum stream_result {
	STREAM_CONTINUE, /* sink callbacks only: all is well */
	STREAM_STOPPED,  /* stop was requested; the sink flushed; clean exit */
	STREAM_LOST,     /* connection or apply trouble: reconnect */
	STREAM_FATAL,    /* an error retrying cannot fix */
};

#endif
