"""`POST /gitlab/merge-requests/review`: the gateway reviews and posts for a CI job.

The job sends only its GitLab CI ID token, and `{"project", "merge_request_iid", "prompt"?}`.
The token must be a verified OIDC token (a key names no project), and its `project_id` or
`project_path` claim must be the project asked about: a job can have only its own project's merge
requests reviewed. The gateway then reads the MR and posts with its own bot token, so no project
needs a GitLab write token in its CI variables. Each model call is a ledger row of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.api.http import Request, Send, send_response
from lockgate.auth.identity import Identifier
from lockgate.auth.policy import Principal
from lockgate.config.models import GitLabConfig
from lockgate.errors import BadRequest, GatewayError, PermissionDenied, UpstreamServerError
from lockgate.gitlab.api import GitLabAPI, GitLabError
from lockgate.gitlab.review import (
    ReviewAnswer,
    ReviewError,
    ReviewOptions,
    ReviewRequest,
    run_review,
)
from lockgate.options import RequestOptions
from lockgate.prompts.runner import PromptRunner
from lockgate.reply import JSONReply
from lockgate.schemas.decode import decode_object
from lockgate.usage.accounting import Accounting

__all__ = ["GitLabEndpoints"]


class GitLabEndpoints:
    def __init__(
        self,
        settings: GitLabConfig,
        runner: PromptRunner,
        identifier: Identifier,
        accounting: Accounting,
        max_body_bytes: int,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._identifier = identifier
        self._accounting = accounting
        self._limit = max_body_bytes

    async def review(self, request: Request, send: Send) -> None:
        principal = await self._identifier.identify(request)
        project, iid, prompt = self._read(decode_object(await request.body(self._limit)))
        _check_project(principal, project)

        async def review(chunk: ReviewRequest) -> ReviewAnswer:
            with self._accounting.track(request, "prompt", part=True) as record:
                record.identify(principal)
                reply = await self._runner.call(
                    prompt, chunk.input(), RequestOptions(), principal, record
                )
                assert isinstance(reply, JSONReply)  # not asked to stream
                version = dict(reply.headers).get(b"x-lockgate-prompt-version")
                data = orjson.loads(reply.body)
                return ReviewAnswer.from_json(data, version.decode() if version else None)

        options = ReviewOptions(prompt=prompt)
        try:
            with GitLabAPI(self._settings.url, self._settings.token.get_secret_value()) as api:
                outcome = await run_review(api, project, iid, review, options)
        except GitLabError as error:
            raise UpstreamServerError(str(error), code="gitlab_error") from None
        except ReviewError as error:
            raise GatewayError(str(error), code="review_failed", status=422) from None
        await send_response(
            send, 200, orjson.dumps(outcome.as_json()), [(b"x-request-id", request.request_id)]
        )

    def _read(self, body: Mapping[str, Any]) -> tuple[str | int, int, str]:
        project = body.get("project")
        if isinstance(project, bool) or not isinstance(project, str | int) or project == "":
            raise BadRequest("'project' must be the project's id or path", param="project")
        iid = body.get("merge_request_iid")
        if isinstance(iid, bool) or not isinstance(iid, int) or iid < 1:
            raise BadRequest(
                "'merge_request_iid' must be the merge request's number", param="merge_request_iid"
            )
        prompt = body.get("prompt") or self._settings.prompt
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be a prompt reference", param="prompt")
        return project, iid, prompt


def _check_project(principal: Principal, project: str | int) -> None:
    claims = principal.claims
    if principal.kind != "oidc" or claims is None:
        raise PermissionDenied(
            "Reviews posted by the gateway need the job's GitLab CI ID token: a key names no "
            "project to check"
        )
    by_id = str(claims.get("project_id", ""))
    by_path = str(claims.get("project_path", "")).lower()
    wanted = str(project)
    if not (wanted == by_id or (by_path and wanted.lower() == by_path)):
        raise PermissionDenied(
            f"The ID token is for project {claims.get('project_path') or by_id or '(none)'}, "
            f"not {wanted}: a job can only have its own project's merge requests reviewed"
        )
