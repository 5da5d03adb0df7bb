"""The body of ``POST /v1/chat/completions`` (spec §F.2), validated at the edge.

Fields the ``openai`` SDK and its ecosystem send that Agentry does not act on (``top_p``,
``seed``, ``user``, ``frequency_penalty``, ``parallel_tool_calls``, …) are accepted and
ignored, so existing clients work unchanged; what would change the answer in a way Agentry
cannot honour (``n`` > 1, a forced ``tool_choice``, a JSON ``response_format``, audio,
function-call messages) is refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interfaces.http.schemas import Open

FunctionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Text = Annotated[str, Field(max_length=1_000_000)]


class TextPart(Open):
    type: Literal["text"]
    text: Text


class RefusalPart(Open):
    type: Literal["refusal"]
    refusal: Text


class ImageUrl(Open):
    url: Annotated[str, Field(min_length=1, max_length=20_000_000)]


class ImagePart(Open):
    type: Literal["image_url"]
    image_url: ImageUrl


UserPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class CalledFunction(Open):
    name: FunctionName
    arguments: Annotated[str, Field(max_length=1_000_000)]


class ToolCall(Open):
    id: Annotated[str, Field(min_length=1, max_length=256)]
    type: Literal["function"] = "function"
    function: CalledFunction


class SystemMessage(Open):
    role: Literal["system", "developer"]
    content: Text | list[TextPart]


class UserMessage(Open):
    role: Literal["user"]
    content: Text | Annotated[list[UserPart], Field(max_length=500)]


class AssistantMessage(Open):
    role: Literal["assistant"]
    content: Text | list[AssistantPart] | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=128)] | None = None


class ToolMessage(Open):
    role: Literal["tool"]
    tool_call_id: Annotated[str, Field(min_length=1, max_length=256)]
    content: Text | list[TextPart]


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class FunctionDefinition(Open):
    name: FunctionName
    description: Annotated[str, Field(max_length=10_000)] | None = None
    parameters: dict[str, Any] | None = None


class FunctionTool(Open):
    type: Literal["function"]
    function: FunctionDefinition


class ResponseFormat(Open):
    type: Literal["text"]


class StreamOptions(Open):
    include_usage: bool | None = None


class ChatCompletionCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=10_000)]
    tools: Annotated[list[FunctionTool], Field(max_length=128)] | None = None
    tool_choice: Literal["auto", "none"] | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stop: Annotated[str, Field(min_length=1, max_length=1000)] | Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=4)
    ] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None

    @model_validator(mode="after")
    def _function_parameters_are_schemas(self) -> ChatCompletionCreate:
        for index, tool in enumerate(self.tools or []):
            parameters = tool.function.parameters
            if parameters is not None and parameters.get("type", "object") != "object":
                raise ValueError(f"tools[{index}].function.parameters must be a JSON schema of type object")
        return self

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
