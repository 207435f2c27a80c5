# Writes the lme4 example data sets used by the reference tests as CSV.
suppressMessages(library(lme4))
write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
write.csv(Pastes, "pastes.csv", row.names = FALSE)
