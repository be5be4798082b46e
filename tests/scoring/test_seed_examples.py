"""The seeds' worked examples, each as a model with contacts that do and do not qualify."""

from __future__ import annotations

from scoring.engine import score
from tests.scoring.factories import AS_OF, activity, contact, model


def pricing(days_ago: float) -> object:
    return activity("page_view", days_ago, url="https://example.com/pricing")


class TestSaas:
    """50+ employees, pricing page twice, and a case study or a webinar."""

    def test_qualifies_with_all_three(self) -> None:
        who = contact(company_size=120, job_title="Director of Ops", industry="Software")
        acts = [pricing(2), pricing(9), activity("webinar_attended", 5)]
        result = score(model("saas"), who, acts, AS_OF)
        assert result.is_mql
        assert {"company-50-plus", "senior-title", "target-industry"} <= result.matched_fit
        assert {"pricing-twice-14d", "webinar"} <= result.matched_engagement

    def test_case_study_instead_of_webinar(self) -> None:
        who = contact(company_size=50, job_title="Analyst", industry="saas")
        acts = [pricing(1), pricing(3), activity("content_download", 1, asset_type="case_study")]
        assert score(model("saas"), who, acts, AS_OF).is_mql

    def test_small_company_does_not_qualify_however_engaged(self) -> None:
        who = contact(company_size=49, job_title="CEO", industry="software")
        acts = [
            pricing(1),
            pricing(2),
            activity("webinar_attended", 1),
            activity("demo_request", 1),
        ]
        result = score(model("saas"), who, acts, AS_OF)
        assert result.total >= 50
        assert not result.is_mql

    def test_pricing_visits_outside_the_window_do_not_count(self) -> None:
        who = contact(company_size=500, job_title="VP Sales", industry="software")
        acts = [pricing(2), pricing(20), activity("webinar_attended", 1)]
        result = score(model("saas"), who, acts, AS_OF)
        assert "pricing-twice-14d" not in result.matched_engagement
        assert not result.is_mql

    def test_student_is_pulled_below_the_grade(self) -> None:
        who = contact(company_size=5000, job_title="Student intern", industry="software")
        acts = [pricing(1), pricing(2), activity("webinar_attended", 1)]
        result = score(model("saas"), who, acts, AS_OF)
        assert result.grade == "D"
        assert not result.is_mql


class TestWholesale:
    """A business licence on file, a catalogue requested, five product pages viewed."""

    def products(self, n: int) -> list[object]:
        return [activity("page_view", i + 1, url=f"/products/item-{i}") for i in range(n)]

    def test_qualifies(self) -> None:
        who = contact(properties={"business_license_number": "CA-1234567"})
        acts = [activity("form_submission", 3, form="catalog-request"), *self.products(5)]
        result = score(model("wholesale"), who, acts, AS_OF)
        assert result.is_mql
        licence = next(r for r in result.reasons if r.rule == "business-licence")
        assert licence.evidence == ["business_license_number=CA-1234567"]

    def test_four_product_pages_are_not_enough(self) -> None:
        who = contact(properties={"business_license_number": "CA-1234567"})
        acts = [activity("form_submission", 3, form="catalog-request"), *self.products(4)]
        assert not score(model("wholesale"), who, acts, AS_OF).is_mql

    def test_no_valid_licence(self) -> None:
        acts = [activity("form_submission", 3, form="catalog-request"), *self.products(8)]
        for props in ({}, {"business_license_number": "pending"}):
            assert not score(model("wholesale"), contact(properties=props), acts, AS_OF).is_mql

    def test_at_least_without_window_counts_all_history(self) -> None:
        who = contact(properties={"business_license_number": "TX123456"})
        old = [activity("page_view", 300 + i, url=f"/products/{i}") for i in range(5)]
        acts = [activity("form_submission", 1, form="catalog-request"), *old]
        assert score(model("wholesale"), who, acts, AS_OF).is_mql


class TestProptech:
    """A licensed agent, the demo video watched, three visits in seven days."""

    def test_qualifies(self) -> None:
        who = contact(properties={"real_estate_license": "DRE 01234567"})
        acts = [
            activity("content_download", 10, asset="platform-demo", asset_type="video"),
            *(activity("page_view", d, url="/") for d in (1, 3, 6)),
        ]
        assert score(model("proptech"), who, acts, AS_OF).is_mql

    def test_visits_spread_over_more_than_seven_days(self) -> None:
        who = contact(properties={"real_estate_license": "DRE 01234567"})
        acts = [
            activity("content_download", 10, asset="platform-demo", asset_type="video"),
            *(activity("page_view", d, url="/") for d in (1, 3, 8)),
        ]
        assert not score(model("proptech"), who, acts, AS_OF).is_mql

    def test_unlicensed_contact(self) -> None:
        acts = [
            activity("content_download", 1, asset="platform-demo", asset_type="video"),
            *(activity("page_view", d, url="/") for d in (1, 2, 3)),
        ]
        for props in ({}, {"real_estate_license": "  "}):
            assert not score(model("proptech"), contact(properties=props), acts, AS_OF).is_mql


class TestPointExample:
    """+10 ebook, +20 webinar, +30 demo; MQL at 50."""

    def test_webinar_and_demo_make_fifty(self) -> None:
        acts = [activity("webinar_attended", 1), activity("demo_request", 2)]
        result = score(model("points"), contact(), acts, AS_OF)
        assert (result.engagement, result.total, result.is_mql) == (50, 50, True)
        assert sorted((r.rule, r.points) for r in result.reasons) == [
            ("demo", 30),
            ("webinar", 20),
        ]

    def test_ebook_and_webinar_make_thirty(self) -> None:
        acts = [
            activity("content_download", 1, asset_type="ebook"),
            activity("webinar_attended", 1),
        ]
        result = score(model("points"), contact(), acts, AS_OF)
        assert (result.total, result.is_mql) == (30, False)

    def test_each_occurrence_counts(self) -> None:
        acts = [activity("content_download", d, asset_type="ebook") for d in (1, 2, 3, 4, 5)]
        assert score(model("points"), contact(), acts, AS_OF).total == 50
