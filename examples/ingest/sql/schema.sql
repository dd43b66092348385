-- Report 001's table, applied once on the first start. MariaDB's default character set here is
-- latin1, so the table says utf8mb4 for the report's own test name (田中太郎).
-- One column is added to the report's four: the SQS message id, unique, so a message the queue
-- delivers again after its row was written (a batch whose answer was lost) inserts nothing.
CREATE TABLE users (
  id SERIAL PRIMARY KEY,
  name VARCHAR(255),
  email VARCHAR(255),
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  message_id VARCHAR(100) UNIQUE
) DEFAULT CHARSET = utf8mb4;
