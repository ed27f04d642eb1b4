"""Property-based requests from the app's own OpenAPI schema: every response must be one
the schema promises, and none a server error."""

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 25  # the suite's time budget; hypothesis varies them run to run


def test_every_endpoint_answers_as_its_schema_says(served):
    # One hypothesis run per operation, driven here rather than by schemathesis' pytest
    # plugin, which does not run under this pytest (its lazy fixture loader fails on setup).
    # Schemathesis calls the app as `testserver`, a name it answers only with a token.
    loopback = {"Host": "127.0.0.1"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.client.app, headers=loopback)
    schema.config.update(headers=loopback)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def answers_as_promised(case):
            case.call_and_validate()

        answers_as_promised()
