"""`python -m sandbox --port P --contacts N --seed S [--tier T] [--profile configured|stock]
[--scopes a,b] [--faults SPEC] [--salesforce-hidden-fields Lead.Industry,...]
[--salesforce-no-customize] [--salesforce-converted-share F] [--salesforce-all-day-share F]
[--latency [SCALE]] [--latency-seed N]`."""

from __future__ import annotations

import argparse

from sandbox.run import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Serve the sandbox HubSpot and Salesforce."
    )
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--tier", default="professional", choices=["starter", "professional", "enterprise"]
    )
    parser.add_argument(
        "--profile",
        default="configured",
        choices=["configured", "stock"],
        help="configured: the product's portal and org; stock: both CRMs as they come",
    )
    parser.add_argument(
        "--scopes", default=None, help="comma-separated HubSpot scopes the token is granted"
    )
    parser.add_argument("--faults", default=None, help="e.g. '500=0.02,reset=0.01,seed=7'")
    parser.add_argument("--activities-per-contact", type=float, default=20.0)
    parser.add_argument(
        "--tls-dir", default=None, help="where to write ca.pem and the JWT key (default: temp)"
    )
    parser.add_argument(
        "--salesforce-hidden-fields",
        default="",
        help="comma-separated Object.Field names field-level security hides from the user",
    )
    parser.add_argument(
        "--salesforce-no-customize",
        action="store_true",
        help="the integration user lacks Customize Application (Tooling API creates fail)",
    )
    parser.add_argument("--salesforce-converted-share", type=float, default=1.0)
    parser.add_argument("--salesforce-all-day-share", type=float, default=0.2)
    parser.add_argument(
        "--latency",
        type=float,
        nargs="?",
        const=1.0,
        default=None,
        metavar="SCALE",
        help="answer in realistic times (HubSpot median 250 ms, Salesforce 400 ms, slower "
        "families longer); SCALE multiplies every median (default 1; 0: off)",
    )
    parser.add_argument(
        "--latency-seed", type=int, default=None, help="seed of the delays (default: --seed)"
    )
    args = parser.parse_args(argv)
    serve(
        args.port,
        args.contacts,
        args.seed,
        args.tier,
        args.faults,
        host=args.host,
        activities_per_contact=args.activities_per_contact,
        tls_dir=args.tls_dir,
        profile=args.profile,
        scopes=[s for s in args.scopes.split(",") if s] if args.scopes is not None else None,
        salesforce_can_customize=not args.salesforce_no_customize,
        salesforce_hidden_fields=[f for f in args.salesforce_hidden_fields.split(",") if f],
        salesforce_converted_share=args.salesforce_converted_share,
        salesforce_all_day_share=args.salesforce_all_day_share,
        latency=args.latency,
        latency_seed=args.latency_seed,
    )


if __name__ == "__main__":
    main()
