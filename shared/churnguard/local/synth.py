"""A seeded generator of Telco-schema customers with realistic, learnable churn signal.

The demo and tests train on it when the real data set is not at hand. The effects mirror
what the IBM Telco data shows: month-to-month contracts, short tenure, fibre internet,
electronic cheques and missing support add-ons raise churn; long contracts lower it.

    df = generate_customers(5000, seed=7)   # raw strings, like a CSV read with dtype=str
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

ADDONS = ["OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies"]
ADDON_RATE = {
    "OnlineSecurity": 0.37,
    "OnlineBackup": 0.44,
    "DeviceProtection": 0.44,
    "TechSupport": 0.37,
    "StreamingTV": 0.49,
    "StreamingMovies": 0.50,
}


def generate_customers(n: int, seed: int = 0, churn_rate: float = 0.265) -> pd.DataFrame:
    import pandas as pd

    rng = np.random.default_rng(seed)
    yes_no = np.array(["No", "Yes"])
    gender = rng.choice(["Female", "Male"], n)
    senior = (rng.random(n) < 0.16).astype(int)
    partner = rng.random(n) < 0.48
    dependents = rng.random(n) < np.where(partner, 0.5, 0.1)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.21, 0.24])
    mean_tenure = np.select([contract == "Month-to-month", contract == "One year"], [18.0, 42.0], 57.0)
    tenure = np.clip(np.round(rng.gamma(2.0, mean_tenure / 2.0)), 0, 72).astype(int)
    phone = rng.random(n) < 0.9
    multiple = np.where(phone, np.where(rng.random(n) < 0.47, "Yes", "No"), "No phone service")
    internet = rng.choice(["DSL", "Fiber optic", "No"], n, p=[0.34, 0.44, 0.22])
    has_net = internet != "No"
    addons = {}
    for a in ADDONS:
        take = rng.random(n) < ADDON_RATE[a] + 0.1 * (contract != "Month-to-month")
        addons[a] = np.where(has_net, np.where(take, "Yes", "No"), "No internet service")
    paperless = rng.random(n) < 0.59
    payment = rng.choice(
        ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"],
        n,
        p=[0.34, 0.23, 0.22, 0.21],
    )
    n_addons = sum((addons[a] == "Yes").astype(int) for a in ADDONS)
    monthly = (
        20.0 * phone
        + 5.0 * (multiple == "Yes")
        + np.select([internet == "DSL", internet == "Fiber optic"], [25.0, 50.0], 0.0)
        + 5.0 * n_addons
        + rng.normal(0, 3, n)
    )
    monthly = np.round(np.clip(monthly, 18.25, 118.75), 2)
    total = np.round(tenure * monthly * rng.normal(1.0, 0.05, n), 2)

    logit = (
        1.1 * (contract == "Month-to-month")
        - 1.0 * (contract == "Two year")
        - 0.9 * np.log1p(tenure) / np.log(73) * 2.0
        + 0.8 * (internet == "Fiber optic")
        - 0.6 * (internet == "No")
        - 0.5 * (addons["OnlineSecurity"] == "Yes")
        - 0.45 * (addons["TechSupport"] == "Yes")
        + 0.45 * (payment == "Electronic check")
        + 0.3 * senior
        + 0.25 * paperless
        - 0.2 * partner
        + 0.012 * (monthly - 65.0)
        + rng.normal(0, 0.6, n)  # what no feature explains
    )
    # Choose the intercept so the churn share matches the target rate.
    intercept = _solve_intercept(logit, churn_rate)
    churn = rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + intercept)))

    ids = [f"{rng.integers(1000, 9999)}-{''.join(rng.choice(list('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), 5))}" for _ in range(n)]
    df = pd.DataFrame(
        {
            "customerID": ids,
            "gender": gender,
            "SeniorCitizen": senior.astype(str),
            "Partner": yes_no[partner.astype(int)],
            "Dependents": yes_no[dependents.astype(int)],
            "tenure": tenure.astype(str),
            "PhoneService": yes_no[phone.astype(int)],
            "MultipleLines": multiple,
            "InternetService": internet,
            **addons,
            "Contract": contract,
            "PaperlessBilling": yes_no[paperless.astype(int)],
            "PaymentMethod": payment,
            "MonthlyCharges": [f"{v:.2f}" for v in monthly],
            "TotalCharges": [" " if t == 0 else f"{v:.2f}" for t, v in zip(tenure, total, strict=False)],
            "Churn": yes_no[churn.astype(int)],
        }
    )
    return df


def _solve_intercept(logit: np.ndarray, rate: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ----- generated data sets for model selection (bench/model_selection.py) -------------------------
REGIONS = [f"Region {i:02d}" for i in range(40)]


def _subscribers(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The columns both model-selection generators share: a mobile subscriber base."""
    plan = rng.choice(["Basic", "Plus", "Unlimited"], n, p=[0.45, 0.35, 0.2])
    allowance = np.select([plan == "Basic", plan == "Plus"], [300.0, 800.0], np.inf)
    minutes = np.round(rng.gamma(2.2, 160.0, n))
    return {
        "plan": plan,
        "allowance": allowance,
        "minutes": minutes,
        "complaints": rng.poisson(0.6, n),
        "tenure": np.clip(np.round(rng.gamma(1.6, 14.0, n)), 1, 96),
        "dropped_calls": rng.poisson(2.0 + minutes / 400.0),
        "age": np.clip(np.round(rng.normal(41, 13, n)), 18, 90),
        "region": rng.choice(REGIONS, n),
        "autopay": rng.random(n) < 0.55,
        "fee": np.round(np.select([plan == "Basic", plan == "Plus"], [19.0, 35.0], 59.0) + rng.normal(0, 4, n), 2),
    }


def _frame(c: dict[str, np.ndarray], logit: np.ndarray, churn_rate: float, rng: np.random.Generator):
    import pandas as pd

    churn = rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-(logit + _solve_intercept(logit, churn_rate))))
    n = len(logit)
    return pd.DataFrame(
        {
            "subscriber_id": [f"S{i:07d}" for i in rng.permutation(n)],
            "plan": c["plan"],
            "monthly_fee": [f"{v:.2f}" for v in c["fee"]],
            "minutes": c["minutes"].astype(int).astype(str),
            "dropped_calls": c["dropped_calls"].astype(str),
            "complaints": c["complaints"].astype(str),
            "tenure_months": c["tenure"].astype(int).astype(str),
            "age": c["age"].astype(int).astype(str),
            "region": c["region"],
            "autopay": np.where(c["autopay"], "1", "0"),
            "churned": np.where(churn, "yes", "no"),
        }
    )


def generate_interacting(n: int, seed: int = 0, churn_rate: float = 0.2) -> pd.DataFrame:
    """Subscribers whose churn comes from interactions, as on the Iranian data: usage over the plan's
    allowance (usage x plan), complaints that matter only for heavy users (complaints x usage), dropped
    calls that hurt new subscribers most (quality x tenure). Main effects alone explain little of it."""
    rng = np.random.default_rng(seed)
    c = _subscribers(n, rng)
    over = np.clip(c["minutes"] / c["allowance"] - 1.0, 0.0, 2.0)  # share over the allowance
    heavy = c["minutes"] > 450
    new = c["tenure"] < 12
    logit = (
        2.6 * over * (c["plan"] == "Basic")
        + 1.8 * over * (c["plan"] == "Plus")
        + 1.3 * c["complaints"] * heavy
        - 0.4 * c["complaints"] * ~heavy
        + 0.35 * c["dropped_calls"] * new
        - 1.2 * ((c["plan"] == "Unlimited") & (c["minutes"] < 150))  # paying for what they use: stay
        + 0.9 * (~c["autopay"] & new)
        + rng.normal(0, 0.5, n)
    )
    return _frame(c, logit, churn_rate, rng)


def generate_additive(n: int, seed: int = 0, churn_rate: float = 0.2) -> pd.DataFrame:
    """The same subscribers with a nearly additive signal, as on the Telco data: each column moves the
    log-odds on its own, smoothly, with one weak interaction."""
    rng = np.random.default_rng(seed)
    c = _subscribers(n, rng)
    region_effect = dict(zip(REGIONS, rng.normal(0, 0.4, len(REGIONS)), strict=True))
    logit = (
        -1.6 * np.log1p(c["tenure"]) / np.log(97) * 2.0
        + 0.8 * c["complaints"]
        + 0.15 * c["dropped_calls"]
        + 0.03 * (c["fee"] - 35.0)
        + np.select([c["plan"] == "Basic", c["plan"] == "Plus"], [0.5, 0.0], -0.4)
        - 0.9 * c["autopay"]
        - 0.02 * (c["age"] - 41)
        + np.array([region_effect[r] for r in c["region"]])
        + 0.2 * c["complaints"] * (c["tenure"] < 12)
        + rng.normal(0, 0.5, n)
    )
    return _frame(c, logit, churn_rate, rng)
