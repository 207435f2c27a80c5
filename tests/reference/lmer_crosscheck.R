# Fits the pipeline's primary model with lme4/lmerTest, for the cross-checks in the tests.
# Usage: Rscript lmer_crosscheck.R FRAME.csv OUT.csv
# FRAME.csv columns: y, institution, participant and the fixed-effects design columns x_1..x_p
# (exactly the full-rank design the pipeline fitted). OUT.csv: quantity, term, value.
suppressMessages({library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
frame <- read.csv(args[1], stringsAsFactors = FALSE)
design <- grep("^x_", names(frame), value = TRUE)
formula <- as.formula(paste("y ~ 0 +", paste(design, collapse = " + "),
                            "+ (1 | institution) + (1 | institution:participant)"))
fit <- lmer(formula, frame, REML = TRUE,
            control = lmerControl(check.conv.singular = "ignore"))
coefs <- coef(summary(fit, ddf = "Satterthwaite"))
vc <- as.data.frame(VarCorr(fit))
out <- rbind(
  data.frame(quantity = "estimate", term = rownames(coefs), value = coefs[, "Estimate"]),
  data.frame(quantity = "std_error", term = rownames(coefs), value = coefs[, "Std. Error"]),
  data.frame(quantity = "df", term = rownames(coefs), value = coefs[, "df"]),
  data.frame(quantity = "variance", term = vc$grp, value = vc$vcov),
  data.frame(quantity = "reml_criterion", term = "", value = REMLcrit(fit)),
  data.frame(quantity = "singular", term = "", value = as.numeric(isSingular(fit)))
)
write.csv(out, args[2], row.names = FALSE)
