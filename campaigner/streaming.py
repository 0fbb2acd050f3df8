"""One run's delivery: the cohort read batch by batch, each batch produced and
confirmed by the broker before the checkpoint moves past it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from campaigner import cohort, db, errors, ledger, planning
from campaigner.campaigns import Campaign
from campaigner.context import Context
from campaigner.envelope import EnvelopeTemplate

logger = logging.getLogger(__name__)

# Reading starts below every possible key of a bigint column.
FIRST_KEY = -(2**63)


def stream(context: Context, campaign: Campaign, run: ledger.Run) -> int:
    """Produce one message per cohort row, batch by batch, each confirmed before the
    checkpoint moves past it. Returns how many recipients were refused for good."""
    template = envelope_template(campaign, run)
    batches = cohort.read_batches(
        context.reader,
        context.settings,
        campaign_name=campaign.name,
        cohort=campaign.cohort,
        fields=campaign.message_fields,
        after=FIRST_KEY if run.checkpoint is None else run.checkpoint,
        batch_size=campaign.batch_size,
    )
    refused = 0
    for batch_no, rows in enumerate(batches, start=1):
        context.check_stop(f"before user id {rows[0][0]}")
        # The local clock: close enough to the database's for deadlines of hours.
        check_deadline(campaign, template.expires_at, now=datetime.now(UTC))
        refused += send_batch(context, campaign, run, template, rows)
        logger.debug(
            "campaign %r: batch %d confirmed (%d rows)",
            campaign.name,
            batch_no,
            len(rows),
            extra={
                "event": "batch_confirmed",
                "run_id": run.id,
                "batch_no": batch_no,
                "rows": len(rows),
            },
        )
    return refused


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


def check_deadline(campaign: Campaign, expires_at: datetime, *, now: datetime) -> None:
    if now >= expires_at:
        raise errors.DeadlinePassed(
            f"campaign {campaign.name!r}: deadline {expires_at.isoformat()} passed"
            " before the end of the cohort; the rest is not sent"
        )


def send_batch(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    template: EnvelopeTemplate,
    rows: list[tuple[Any, ...]],
) -> int:
    """Produce one batch, wait for all its delivery reports, then move the
    checkpoint past it. Returns how many recipients were refused for good."""
    messages = template.render(rows, produced_at=datetime.now(UTC))
    flight = context.sink.send(campaign.topic, messages)
    context.sink.wait(flight, campaign_name=campaign.name, topic=campaign.topic)
    with db.translated("saving the checkpoint"):
        ledger.record_progress(
            context.control,
            run.id,
            checkpoint=rows[-1][0],
            matched=len(rows),
            produced=flight.confirmed,
            refused=flight.refused,
        )
    return len(flight.refused)
