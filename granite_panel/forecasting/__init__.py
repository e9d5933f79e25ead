"""Forecasters: TTM through tsfm_public, and the statistical fallback."""

from .service import ForecastResult, ForecastService, StatisticalForecaster, TTMForecaster

__all__ = ["ForecastResult", "ForecastService", "StatisticalForecaster", "TTMForecaster"]
