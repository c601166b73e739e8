"""On call: people, teams, service ownership, schedules with layers and overrides, and the
answer to "who is on call now, and why" (pure: no Kafka, Faust or Redis). See docs/oncall.md.
"""

from pipeline.domain.oncall.config import OnCallConfigError, dump_directory, parse_directory
from pipeline.domain.oncall.directory import Directory, DirectoryError, Person, Team
from pipeline.domain.oncall.overrides import Override
from pipeline.domain.oncall.schedule import OnCall, Schedule, Segment, timeline, who

__all__ = [
    "Directory",
    "DirectoryError",
    "OnCall",
    "OnCallConfigError",
    "Override",
    "Person",
    "Schedule",
    "Segment",
    "Team",
    "dump_directory",
    "parse_directory",
    "timeline",
    "who",
]
