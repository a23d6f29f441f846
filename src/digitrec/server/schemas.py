"""The shapes of the HTTP API's JSON: request bodies and answers (pydantic, so /openapi.json shows them)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from digitrec.util import SIDE

# One pixel: a JSON number from 0 (background) to 255 (ink), as in MNIST; strings and booleans are refused.
Pixel = Annotated[float, Field(ge=0, le=255, strict=True)]
Row = Annotated[list[Pixel], Field(min_length=SIDE, max_length=SIDE)]
IMAGE_DOC = "a PNG or JPEG (or GIF, BMP, WebP, TIFF) picture, base64-encoded; a data: URL is fine too"


def no_default(schema: dict[str, Any]) -> None:
    """Drop `"default": null` from a field documented without null (absent means "not given")."""
    schema.pop("default", None)


class PictureIn(BaseModel):
    """One picture: `pixels` (28 rows of 28 numbers, 0 = background, 255 = ink) or `image` (base64)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"oneOf": [{"required": ["pixels"]}, {"required": ["image"]}]})

    pixels: Annotated[list[Row], Field(min_length=SIDE, max_length=SIDE)] | SkipJsonSchema[None] = Field(
        None, description="28 rows of 28 numbers 0..255; either polarity, any position (they are centred)",
        json_schema_extra=no_default)
    image: str | SkipJsonSchema[None] = Field(None, description=IMAGE_DOC, json_schema_extra=no_default)
    preprocess: bool = Field(True, description="false: `pixels` are already MNIST-style (ink bright, centred, "
                                               "as in MNIST or Kaggle's CSV) and go to the model as they are")

    @model_validator(mode="after")
    def one_source(self) -> "PictureIn":
        if (self.pixels is None) == (self.image is None):
            raise ValueError("give exactly one of `pixels` or `image`")
        if not self.preprocess and self.pixels is None:
            raise ValueError("`preprocess: false` applies to `pixels` only")
        return self


class BatchIn(BaseModel):
    """Many pictures, answered in order, in one model call."""

    model_config = ConfigDict(extra="forbid")

    items: list[PictureIn] = Field(min_length=1, description="the pictures (at most the server's max_batch)")


class NumberIn(BaseModel):
    """A picture of a number written on one line, such as 2026."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description=IMAGE_DOC)


class PageIn(NumberIn):
    """A picture of a page (a form, a photo of a sheet) holding any number of numbers, or none."""


class CollectIn(BaseModel):
    """A picture of one digit and the digit it is, to be saved for fine-tuning (`digitrec serve --collect`)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description=IMAGE_DOC)
    label: int = Field(ge=0, le=9, strict=True, description="the digit the picture shows, 0 to 9")


class CollectOut(BaseModel):
    saved: str = Field(description="where the picture was saved, relative to the collecting folder: 7/….png")
    label: int
    count: int = Field(description="pictures of this digit in the collecting folder now")


class ModelRef(BaseModel):
    name: str = Field(description="the architecture, e.g. conv2-fc64")
    version: str = Field(description="the first 12 hex digits of the weights' SHA-256")


class Scored(BaseModel):
    digit: int
    probability: float


class PredictionOut(BaseModel):
    source: str = ""
    digit: int | None = Field(description="null when the picture is blank or holds no digit: nothing is guessed")
    probability: float = Field(description="of the answer: of `digit`, or of 'not a digit'; 0 when blank; "
                                           "calibrated on held-out digits when the model file says how")
    unsure: bool = Field(description="probability below the server's threshold")
    blank: bool = Field(description="no ink found")
    not_digit: bool = Field(False, description="the picture holds no digit (a letter, a doodle, …): digit is null")
    not_digit_probability: float = Field(0.0, description="the model's probability that this is no digit "
                                                          "(0 for models without that answer)")
    top3: list[Scored]
    probabilities: list[float] = Field(description="ten probabilities, digit 0 first; zeros when blank")
    input_png: str | None = Field(None, description="with ?include_input=true: the 28x28 picture the model saw, "
                                                    "base64 PNG")


class PredictOut(PredictionOut):
    model: ModelRef


class BatchOut(BaseModel):
    model: ModelRef
    predictions: list[PredictionOut]


class BoxOut(BaseModel):
    x: int = Field(description="left edge, in the picture's own pixels")
    y: int = Field(description="top edge")
    width: int
    height: int


class DigitOut(PredictionOut):
    box: BoxOut = Field(description="where this digit is in the picture sent")


class NumberOut(BaseModel):
    source: str = ""
    number: str = Field(description="the digits left to right ('?' for ink that is no digit); empty when blank")
    probability: float = Field(description="product of the digits' probabilities")
    unsure: bool
    blank: bool
    digits: list[DigitOut]
    model: ModelRef


class PageNumberOut(BaseModel):
    number: str = Field(description="the digits left to right ('?' for ink that is no digit)")
    box: BoxOut = Field(description="where the number is on the page, in the picture's own pixels "
                                    "(after its EXIF rotation)")
    probability: float = Field(description="product of the digits' probabilities")
    unsure: bool
    digits: list[DigitOut] = Field(description="each digit, its box in the same pixels")


class PageOut(BaseModel):
    source: str = ""
    width: int = Field(description="of the picture, in pixels, after its EXIF rotation")
    height: int
    numbers: list[PageNumberOut] = Field(description="top to bottom, then left to right; empty when the page "
                                                     "holds no number")
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: str
    backend: str
    threshold: float
    parameters: int | None = None
    test_accuracy: float | None = None
    collect: bool = Field(False, description="POST /v1/collect saves labelled pictures (digitrec serve --collect)")
    metadata: dict[str, Any] = Field(description="everything the model file records about how it was made")


class Health(BaseModel):
    status: str = Field(description="ok or failing (/healthz); ready, starting, draining, healing or failing (/readyz)")
    model: ModelRef
    detail: str | None = Field(None, description="why the server is not ok or not ready")


class ErrorOut(BaseModel):
    error: str = Field(description="a short code, e.g. not_an_image, upload_too_large, invalid_request")
    detail: str = Field(description="one line naming the field or file and what is wrong")
    field: str | None = Field(None, description="the request field or setting it is about, when there is one: "
                                                "file, files[3], items[2].image, threshold")
    errors: list[dict[str, Any]] | None = None


BODY_MODELS = (PictureIn, BatchIn, NumberIn, PageIn)  # documented by hand: the routes parse their bodies themselves
