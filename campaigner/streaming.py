"""One run's delivery: the cohort read batch by batch, each batch a flight that the
broker confirms, several flights on their way at once.

The checkpoint moves only over the contiguous prefix of confirmed flights, one
short transaction per flight: after a crash, at most the flights that were on
their way are sent again. Between flights the campaign's status is read back,
so pausing it stops the run at its next flight.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from campaigner import cohort_stream, db, errors, ledger, planning, shards
from campaigner.campaigns import Campaign
from campaigner.context import Context
from campaigner.envelope import EnvelopeTemplate
from campaigner.kafka_sink import Flight

logger = logging.getLogger(__name__)

# With a rate limit, a batch is produced in slices of this many seconds' worth of
# messages, so a stop signal or a delivery report never waits a whole batch.
PACING_SLICE_S = 0.1


class CampaignPaused(errors.CampaignerError):
    """The campaign was paused (or archived, or deleted) while its run went on."""

    exit_code = errors.EXIT_OK


@dataclasses.dataclass
class Pending:
    """A flight and the rows it carries, until its checkpoint is saved."""

    batch_no: int
    flight: Flight
    rows: int = 0
    last_key: int | None = None


class RateLimit:
    """At most `per_second` messages per second on average over the run."""

    def __init__(self, per_second: int | None) -> None:
        self.per_second = per_second
        self.started = time.monotonic()
        self.sent = 0

    @property
    def slice_size(self) -> int | None:
        if self.per_second is None:
            return None
        return max(1, int(self.per_second * PACING_SLICE_S))

    def delay(self) -> float:
        """Seconds to wait before the next slice may be produced."""
        if self.per_second is None:
            return 0.0
        delay = self.started + self.sent / self.per_second - time.monotonic()
        if delay < -PACING_SLICE_S:
            # Time spent reading the cohort is not saved up for a burst later.
            self.started -= delay + PACING_SLICE_S
            delay = -PACING_SLICE_S
        return delay

    def change(self, per_second: int) -> None:
        """Go on at another rate (a sharded run's share changed), without a burst."""
        if self.per_second is not None and per_second != self.per_second:
            self.started += self.sent / self.per_second
            self.sent = 0
            self.per_second = per_second


def stream(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    shard: shards.Shard | None = None,
) -> int:
    """Produce one message per cohort row (of the shard's range, given one), each
    batch confirmed before the checkpoint moves past it. Returns how many
    recipients were refused for good."""
    return Delivery(context, campaign, run, shard).run()


class Delivery:
    """The flights of one run."""

    def __init__(
        self,
        context: Context,
        campaign: Campaign,
        run: ledger.Run,
        shard: shards.Shard | None = None,
    ) -> None:
        self.context = context
        self.campaign = campaign
        self.run_row = run
        self.shard = shard
        self.template = envelope_template(campaign, run)
        self.window: collections.deque[Pending] = collections.deque()
        self.limit = RateLimit(campaign.rate_limit)
        self.refused = 0
        self.in_flight = context.settings.batches_in_flight
        # A campaign run by hand with --force while paused is not stopped by it.
        self.stops_when_paused = campaign.status == "active"

    def run(self) -> int:
        # None: from the first key on (even the smallest a bigint can hold).
        after = self.run_row.checkpoint
        if self.shard is not None:
            after = self.shard.after
        batches = cohort_stream.read_batches(
            self.context.reader,
            self.context.settings,
            campaign_name=self.campaign.name,
            cohort=self.campaign.cohort,
            encoder=cohort_stream.FieldEncoder(
                self.campaign.message_fields, self.context.customer_columns()
            ),
            after=after,
            batch_size=self.campaign.batch_size,
            until=None if self.shard is None else self.shard.upper_key,
        )
        # Closed however the run ends, so that the thread reading ahead has let go
        # of the reader connection before anything else uses it.
        with contextlib.closing(batches):
            for batch_no in itertools.count(1):
                try:
                    rows = next(batches)
                except StopIteration:
                    break
                except errors.CampaignerError as exc:
                    # Reading failed (a lock or statement timeout, the cohort): the
                    # batches on their way are confirmed and recorded first, so the
                    # next attempt does not send them again.
                    self.stop(exc)
                self.check_before_flight()
                pending = Pending(batch_no, Flight())
                self.window.append(pending)
                self.fly(pending, rows)
                if pending.rows < len(rows):  # cut short by a signal
                    self.stop(self.interrupted())
                self.settle(keep=self.in_flight - 1)
        self.settle(keep=0)
        return self.refused

    def check_before_flight(self) -> None:
        """Stop before the next flight on a signal, a pause, or the deadline."""
        if self.context.stop_signal is not None:
            self.stop(self.interrupted())
        # The local clock: close enough to the database's for deadlines of hours.
        if datetime.now(UTC) >= self.template.expires_at:
            self.stop(
                errors.DeadlinePassed(
                    f"campaign {self.campaign.name!r}: deadline"
                    f" {self.template.expires_at.isoformat()} passed before the end"
                    " of the cohort; the rest is not sent"
                )
            )
        with db.translated("reading the campaign's status"):
            status = ledger.heartbeat(self.context.control, self.run_row.id)
            if self.shard is not None and self.campaign.rate_limit is not None:
                self.limit.change(
                    shards.rate_share(
                        self.context.control, self.run_row.id, self.campaign.rate_limit
                    )
                )
        if self.stops_when_paused and status != "active":
            self.stop(
                CampaignPaused(
                    f"campaign {self.campaign.name!r} is {status or 'deleted'}: its"
                    f" run stopped after user id {self.checkpoint()}; it resumes"
                    " when the campaign is active again, before its deadline"
                )
            )

    def fly(self, pending: Pending, rows: cohort_stream.Rows) -> None:
        """Produce a batch, paced by the rate limit; a stop signal cuts it short."""
        produced_at = datetime.now(UTC)
        for start, end in slices(len(rows), self.limit.slice_size):
            if not self.pace():
                break
            messages = self.template.messages(rows[start:end], produced_at=produced_at)
            self.context.sink.send(self.campaign.topic, messages, pending.flight)
            self.limit.sent += end - start
            pending.rows, pending.last_key = end, int(rows[end - 1][0])
            # Earlier flights confirmed meanwhile move the checkpoint now.
            self.settle(keep=self.in_flight, producing=True)
        logger.debug(
            "campaign %r: batch %d produced (%d rows)",
            self.campaign.name,
            pending.batch_no,
            pending.rows,
            extra={
                "event": "batch_produced",
                "campaign_id": self.campaign.id,
                "run_id": self.run_row.id,
                "batch_no": pending.batch_no,
                "rows": pending.rows,
            },
        )

    def pace(self) -> bool:
        """Wait for the rate limit, serving delivery reports; False on a signal."""
        while (delay := self.limit.delay()) > 0:
            if self.context.stop_signal is not None:
                return False
            self.context.sink.poll(min(delay, PACING_SLICE_S))
        return self.context.stop_signal is None

    def settle(self, *, keep: int, producing: bool = False) -> None:
        """Save the checkpoint over the oldest flights, in order: each one already
        confirmed, then wait for more until at most `keep` are left on their way.
        The newest flight is left alone while it is being produced."""
        while len(self.window) > (1 if producing else 0):
            head = self.window[0]
            if len(self.window) <= keep and not head.flight.done:
                return
            self.context.sink.wait(
                head.flight, campaign_name=self.campaign.name, topic=self.campaign.topic
            )
            self.record(head)
            self.window.popleft()

    def record(self, pending: Pending) -> None:
        flight = pending.flight
        if pending.last_key is not None and self.shard is not None:
            with db.translated("saving the checkpoint"):
                shards.record_progress(
                    self.context.control,
                    self.shard,
                    checkpoint=pending.last_key,
                    matched=pending.rows,
                    produced=flight.confirmed,
                    refused=flight.refused,
                )
        elif pending.last_key is not None:
            with db.translated("saving the checkpoint"):
                ledger.record_progress(
                    self.context.control,
                    self.run_row.id,
                    checkpoint=pending.last_key,
                    matched=pending.rows,
                    produced=flight.confirmed,
                    refused=flight.refused,
                )
        self.refused += len(flight.refused)
        logger.debug(
            "campaign %r: batch %d confirmed (%d rows)",
            self.campaign.name,
            pending.batch_no,
            pending.rows,
            extra={
                "event": "batch_confirmed",
                "campaign": self.campaign.name,
                "campaign_id": self.campaign.id,
                "run_id": self.run_row.id,
                "batch_no": pending.batch_no,
                "rows": pending.rows,
                "produced": flight.confirmed,
                "failed": len(flight.refused),
                "checkpoint": pending.last_key,
            },
        )

    def stop(self, reason: errors.CampaignerError) -> None:
        """Confirm and record what is on its way, then raise `reason`."""
        self.settle(keep=0)
        raise reason

    def interrupted(self) -> errors.Interrupted:
        assert self.context.stop_signal is not None
        return errors.Interrupted(
            f"campaign {self.campaign.name!r}: stopped by"
            f" {self.context.stop_signal.name} after user id {self.checkpoint()};"
            " the next execute resumes it"
        )

    def checkpoint(self) -> int | None:
        """The last key whose flight is on its way or confirmed."""
        for pending in reversed(self.window):
            if pending.last_key is not None:
                return pending.last_key
        if self.shard is not None:
            return self.shard.checkpoint
        return self.run_row.checkpoint


def slices(count: int, size: int | None) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive slices of at most `size` (all at once if None)."""
    step = count if size is None else size
    for start in range(0, count, max(step, 1)):
        yield start, min(start + step, count)


def envelope_template(campaign: Campaign, run: ledger.Run) -> EnvelopeTemplate:
    return EnvelopeTemplate(
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        channel=campaign.channel,
        template=campaign.template,
        run_id=run.id,
        scheduled_for=run.scheduled_for,
        manual=run.manual,
        expires_at=planning.expires_at(campaign, run.scheduled_for),
        fields=campaign.message_fields,
    )
