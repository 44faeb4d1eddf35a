"""What a context reader makes of one file: entities, rejects and counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.quarantine import QuarantinedRecord


@dataclass
class ContextBatch:
    """The context read from one file (or, after ``extend``, from several).

    Attributes
    ----------
    staff, patients, encounters, related_persons, departments: the entities, in file order.
    quarantined: resources or rows that could not be used, with line and reason.
    records_read: resources or rows read (blank lines aside), whatever became of them.
    skipped: resources read that are not context (an Observation, a Claim): neither
        accepted nor quarantined.

    ``records_read`` is not ``accepted + len(quarantined) + skipped``: a PractitionerRole
    or a CareTeam is read as a record but merges into a StaffMember or an Encounter.

    Examples
    --------
    >>> batch = ContextBatch(staff=[StaffMember("s1")], records_read=1)
    >>> batch.extend(ContextBatch(patients=[Patient("p1")], records_read=2, skipped=1))
    >>> batch.accepted, batch.records_read, batch.skipped
    (2, 3, 1)
    """

    staff: list[StaffMember] = field(default_factory=list)
    patients: list[Patient] = field(default_factory=list)
    encounters: list[Encounter] = field(default_factory=list)
    related_persons: list[RelatedPerson] = field(default_factory=list)
    departments: list[Department] = field(default_factory=list)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    records_read: int = 0
    skipped: int = 0

    def extend(self, other: ContextBatch) -> None:
        """Append everything ``other`` holds to this batch, in place.

        Ids are not de-duplicated across batches: the context store upserts by id.
        """
        self.staff.extend(other.staff)
        self.patients.extend(other.patients)
        self.encounters.extend(other.encounters)
        self.related_persons.extend(other.related_persons)
        self.departments.extend(other.departments)
        self.quarantined.extend(other.quarantined)
        self.records_read += other.records_read
        self.skipped += other.skipped

    @property
    def accepted(self) -> int:
        """How many entities the batch holds, of every kind."""
        return (
            len(self.staff)
            + len(self.patients)
            + len(self.encounters)
            + len(self.related_persons)
            + len(self.departments)
        )
