"""The API's request and response bodies: every endpoint answers one of these, so the
OpenAPI schema says exactly what comes back."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lumina_pipeline.storage.browse import ImageTag, Membership  # as storage reads them

Status = Literal["pending", "ok", "error", "skipped", "ignored", "quarantined", "deleted"]
Kind = Literal["image", "raw", "video", "sidecar", "system", "other"]
# who set a tag: a person, ImageNet labels, CLIP's vocabulary, an Ollama caption, or two of those
TagSource = Literal["manual", "model", "openclip", "ollama", "combined"]
TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
QUERY = r"^[^\x00]*[^\s\x00][^\x00]*$"  # ... and a search something more than spaces
# Request bodies take JSON types as they are: `true` or `"5"` is no rating and `"yes"` no
# decision, where pydantic's lax mode would make them 1, 5 and True.
STRICT = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error, not a default


def _whole_number(value: Any) -> Any:
    """JSON has one kind of number, and 4.0 is the integer 4 (JSON Schema's `integer` accepts
    it too), which strict mode alone would refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


IntegerOrNull = Annotated[int | None, BeforeValidator(_whole_number)]


class Problem(BaseModel):
    detail: str


class StackFile(BaseModel):
    id: int
    path: str
    kind: Kind
    file_url: str


class StackSummary(BaseModel):
    """The shot an image is one file of: a RAW and its JPEG, a Live Photo's still and video, a
    photo and its sidecars."""

    id: uuid.UUID
    kind: Literal["raw_jpeg", "live_photo", "with_sidecar"]
    badge: Literal["RAW+JPEG", "LIVE", "SIDECAR"]
    files: list[StackFile] = Field(description="the primary first, then by path; all go or stay together")


class ImageSummary(BaseModel):
    id: int
    catalog_id: uuid.UUID
    path: str = Field(description="relative to source_root, '/'-separated; undecodable bytes as \\xNN")
    path_hex: str | None = Field(description="the path's exact bytes in hex when they are not UTF-8")
    folder: str
    source_root: str
    kind: Kind
    status: Status
    size_bytes: int
    checksum: str | None
    captured_at: str | None = Field(description="the camera's local time, ISO 8601")
    camera: str | None
    width: int | None = Field(description="as displayed (EXIF orientation applied)")
    height: int | None
    quality_score: int | None
    rating: int | None
    description: str | None = Field(description="what the photo shows, in the words of a vision model (captions)")
    burst_id: uuid.UUID | None
    burst_sequence: int | None
    kept: bool = Field(description="a person keeps this file whatever its groups say (keep several, keep all)")
    stack: StackSummary | None
    duration_seconds: float | None = Field(description="a video's length")
    thumbnail_url: str | None = Field(description="a video's: its poster frame")
    file_url: str


class ImagePage(BaseModel):
    items: list[ImageSummary]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last")


class Hashes(BaseModel):
    dhash: str | None
    ahash: str | None
    whash: str | None
    phash: str | None
    hash_version: str | None


class ImageDetail(ImageSummary):
    error: str | None
    dates: dict[str, Any] | None
    metadata: dict[str, Any] | None
    geohash: str | None
    hashes: Hashes
    tags: list[ImageTag]
    group: Membership | None
    is_best_frame: bool | None


class MemberReason(BaseModel):
    """Why a member is in its group, measured against the group's primary."""

    same_checksum: bool
    dhash_distance: int | None
    ahash_distance: int | None
    whash_distance: int | None
    phash_distance: int | None
    embedding_similarity: float | None = Field(description="cosine of the image vectors, when embedded")


class GroupMember(BaseModel):
    image: ImageSummary
    similarity_score: int
    is_primary: bool
    reason: MemberReason


class Group(BaseModel):
    id: uuid.UUID
    catalog_id: uuid.UUID
    similarity_type: Literal["exact", "perceptual"]
    confidence: int
    reviewed: bool
    primary_chosen: bool = Field(description="a person chose the primary, or accepted it by reviewing the group")
    primary_image_id: int | None
    member_count: int


class GroupDetail(Group):
    members: list[GroupMember]


class GroupPage(BaseModel):
    items: list[Group]
    next_after: uuid.UUID | None


class Burst(BaseModel):
    id: uuid.UUID
    catalog_id: uuid.UUID
    image_count: int
    start_time: datetime | None
    end_time: datetime | None
    duration_seconds: float | None = Field(description="from the first frame's capture time to the last one's")
    camera: str
    best_image_id: int | None
    selection_method: str | None
    reviewed: bool
    best_chosen: bool = Field(description="a person chose the best frame, or accepted it by reviewing the burst")


class BurstDetail(Burst):
    frames: list[ImageSummary]


class BurstPage(BaseModel):
    items: list[Burst]
    next_after: uuid.UUID | None


# Image ids in a request body: at most the largest integer a JSON number keeps exactly where it
# is a double (the review page's JavaScript; validators comparing with the schema as doubles).
BODY_ID_MAX = 2**53 - 1
# the bounds before the validator: after it, they would be left out of the JSON schema
ImageIds = list[Annotated[int, Field(ge=1, le=BODY_ID_MAX), BeforeValidator(_whole_number)]]


class Decision(BaseModel):
    model_config = STRICT

    reviewed: bool = Field(description="true records the decision; false takes a review back")
    keep: ImageIds | None = Field(
        None, max_length=10_000,
        description="more members to keep besides the keeper (keep several); members not listed are no longer "
                    "kept; omit to leave them as they are",
    )
    keep_all: bool = Field(False, description="not duplicates: keep every member (overrides `keep`)")
    members: ImageIds | None = Field(
        None, max_length=10_000,
        description="the members the decision was made on, as shown; if the members are others by the time it is "
                    "saved (a regrouping came first), nothing is saved and the answer is 409",
    )


class GroupDecision(Decision):
    primary_image_id: IntegerOrNull = Field(
        None, ge=1, le=BODY_ID_MAX, description="a member to keep; omit to keep the current one"
    )


class BurstDecision(Decision):
    best_image_id: IntegerOrNull = Field(
        None, ge=1, le=BODY_ID_MAX, description="a frame to keep; omit to keep the current one"
    )


CHECKSUM = r"^[0-9a-f]{64}$"
SEEN_DESCRIPTION = ("the image's checksum as shown: if its file holds other bytes now (read again meanwhile), "
                    "nothing is saved and the answer is 409")


class Rating(BaseModel):
    model_config = STRICT

    rating: IntegerOrNull = Field(ge=0, le=5, description="stars; null clears")
    checksum: str | None = Field(None, pattern=CHECKSUM, description=SEEN_DESCRIPTION)


class NewTag(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=100, pattern=TEXT)
    checksum: str | None = Field(None, pattern=CHECKSUM, description=SEEN_DESCRIPTION)


class RemovableFile(BaseModel):
    image_id: int
    path: str
    path_hex: str | None = Field(description="the path's exact bytes in hex when they are not UTF-8")
    source_root: str
    size_bytes: int
    reason: Literal["duplicate", "burst"]
    decided_by: uuid.UUID = Field(description="the reviewed group or burst")
    keep: str = Field(description="the file kept in its place, relative to `keep_source_root`")
    keep_source_root: str


class Removable(BaseModel):
    files: list[RemovableFile]
    total_bytes: int
