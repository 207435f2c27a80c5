# Fits the pipeline's primary model with lme4/lmerTest, for the cross-checks in the tests and
# benchmarks/lmm_speed.py.
# Usage: Rscript lmer_crosscheck.R FRAME.csv OUT.csv [THETA]
# FRAME.csv columns: y, institution, participant and the fixed-effects design columns x_1..x_p
# (exactly the full-rank design the pipeline fitted). OUT.csv: quantity, term, value; "seconds"
# is the wall time of lmer() plus lmerTest's Satterthwaite df (data loading excluded).
# THETA (optional, "institution,participant" relative SDs, e.g. another program's estimate):
# adds "devfun_at_theta", lme4's own REML criterion (devFunOnly = TRUE) evaluated there.
suppressMessages({library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
frame <- read.csv(args[1], stringsAsFactors = FALSE)
design <- grep("^x_", names(frame), value = TRUE)
formula <- as.formula(paste("y ~ 0 +", paste(design, collapse = " + "),
                            "+ (1 | institution) + (1 | institution:participant)"))
started <- proc.time()[["elapsed"]]
fit <- lmer(formula, frame, REML = TRUE,
            control = lmerControl(check.conv.singular = "ignore"))
coefs <- coef(summary(fit, ddf = "Satterthwaite"))
seconds <- proc.time()[["elapsed"]] - started
vc <- as.data.frame(VarCorr(fit))
out <- rbind(
  data.frame(quantity = "estimate", term = rownames(coefs), value = coefs[, "Estimate"]),
  data.frame(quantity = "std_error", term = rownames(coefs), value = coefs[, "Std. Error"]),
  data.frame(quantity = "df", term = rownames(coefs), value = coefs[, "df"]),
  data.frame(quantity = "variance", term = vc$grp, value = vc$vcov),
  data.frame(quantity = "reml_criterion", term = "", value = REMLcrit(fit)),
  data.frame(quantity = "singular", term = "", value = as.numeric(isSingular(fit))),
  data.frame(quantity = "seconds", term = "", value = seconds)
)
if (length(args) >= 3) {
  given <- as.numeric(strsplit(args[3], ",")[[1]])
  names(given) <- c("institution", "institution:participant")
  devfun <- lmer(formula, frame, REML = TRUE, devFunOnly = TRUE)
  # lme4 orders theta by the terms' number of levels: participant first.
  groups <- sub("\\.\\(Intercept\\)$", "", names(getME(fit, "theta")))
  out <- rbind(out, data.frame(quantity = "devfun_at_theta", term = "",
                               value = devfun(unname(given[groups]))))
}
write.csv(out, args[2], row.names = FALSE)
