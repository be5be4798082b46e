"""A local HubSpot- and Salesforce-compatible CRM for the demo, the tests and the
benchmarks. Its public entry point is `sandbox.run` (`running_sandbox`,
`sandbox_process`, `serve`, `SandboxHandle`); see README.md."""
